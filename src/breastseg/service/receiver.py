"""The DICOM listener: a pynetdicom C-STORE SCP that files what the scanner sends, one study per folder.

Every received instance is written to ``STORE/incoming/`` under a temporary name, flushed to disk (fsync) and
renamed to ``STORE/studies/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` before the scanner is
told it was stored — a crash never leaves half a file among the study's, and what the scanner was told is
stored is on disk. Refused, each with a reason in the job store's events and a failure status to the sender:
an association from a calling AE title (or an address) not in the allowed lists, or addressed to another called
AE title than the listener's own; an instance without the identifying UIDs or with UIDs that are not UIDs (which
would otherwise name folders); an image instance without pixel data (0xA900: the scanner learns at once, instead
of a job failing later). Logs carry UIDs and patient IDs, never names.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breastseg.errors import MissingExtra
from breastseg.service.jobstore import JobStore
from breastseg.service.layout import study_folder

try:
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
except ModuleNotFoundError as exc:  # an optional dependency: see pyproject.toml's extras
    raise MissingExtra("service", "pynetdicom") from exc

LOG = logging.getLogger("breastseg.service")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: C-STORE statuses (PS3.4 B.2.3)
SUCCESS, CANNOT_UNDERSTAND, OUT_OF_RESOURCES, DATA_SET_MISMATCH = 0x0000, 0xC000, 0xA700, 0xA900
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True)
class ListenerConfig:
    """Where and for whom the listener listens (host: loopback by default; give 0.0.0.0 to serve the network)."""

    store: Path
    ae_title: str = "BREASTSEG"
    host: str = "127.0.0.1"
    port: int = 11112
    allowed_aes: Sequence[str] = field(default_factory=tuple)
    allowed_ips: Sequence[str] = field(default_factory=tuple)


def _valid_uid(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64 and bool(_UID.match(value))


class Receiver:
    """The C-STORE SCP; :meth:`start` serves in background threads, :meth:`stop` closes the port."""

    def __init__(self, config: ListenerConfig, jobs: JobStore) -> None:
        self.config = config
        self.jobs = jobs
        self.incoming = Path(config.store) / "incoming"
        if self.incoming.exists():  # half-written files of a crash: never acknowledged, so the sender resends
            shutil.rmtree(self.incoming)
        self.incoming.mkdir(parents=True)
        self._server: Any = None

    # -- handlers ------------------------------------------------------------------------------------------------
    def _address(self, event: Any) -> str:
        return str(event.assoc.requestor.address)

    def _on_rejected(self, event: Any) -> None:
        calling = str(event.assoc.requestor.ae_title).strip()
        called = str(getattr(event.assoc.requestor.primitive, "called_ae_title", "") or "").strip()
        if called and called != self.config.ae_title.strip():
            reason = f"called AE title {called!r} is not this listener's ({self.config.ae_title!r})"
        else:
            reason = "calling AE title not allowed"
        message = f"association from AE {calling!r} at {self._address(event)} rejected: {reason}"
        LOG.warning(message)
        self.jobs.event("rejected-association", message)

    def _on_requested(self, event: Any) -> None:
        address = self._address(event)
        if self.config.allowed_ips and address not in self.config.allowed_ips:
            message = f"association from {address} aborted: address not allowed"
            LOG.warning(message)
            self.jobs.event("rejected-address", message)
            event.assoc.abort()

    def _on_store(self, event: Any) -> int:
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            ds = event.dataset
            uids = (ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID"), ds.get("SOPInstanceUID"))
        except Exception as exc:  # an undecodable data set
            self.jobs.event("malformed-file", f"from AE {calling!r}: cannot decode the data set ({exc})")
            return CANNOT_UNDERSTAND
        if not all(_valid_uid(str(u) if u is not None else None) for u in uids):
            message = (
                f"from AE {calling!r}: instance refused, missing or invalid Study/Series/SOP Instance UID "
                f"({', '.join(str(u) for u in uids)})"
            )
            LOG.warning(message)
            self.jobs.event("malformed-file", message, str(uids[0]) if _valid_uid(str(uids[0])) else None)
            return CANNOT_UNDERSTAND
        if ("Rows" in ds or str(ds.get("Modality", "")).upper() in ("CT", "PT", "MR")) and not any(
            k in ds for k in _PIXEL_KEYWORDS
        ):
            message = f"from AE {calling!r}: image instance {uids[2]} refused, it has no pixel data"
            LOG.warning(message)
            self.jobs.event("malformed-file", message, str(uids[0]))
            return DATA_SET_MISMATCH
        study_uid, series_uid, sop_uid = (str(u) for u in uids)
        target = study_folder(self.config.store, study_uid) / series_uid / f"{sop_uid}.dcm"
        tmp = self.incoming / f"{sop_uid}.{os.getpid()}.{time.monotonic_ns()}.part"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as f:
                f.write(event.encoded_dataset(include_meta=True))  # preamble, file meta, the data set as sent
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(target)
        except OSError as exc:
            LOG.error("cannot store %s of study %s: %s", sop_uid, study_uid, exc)
            self.jobs.event("store-failed", f"cannot store instance {sop_uid}: {exc}", study_uid)
            tmp.unlink(missing_ok=True)
            return OUT_OF_RESOURCES
        self.jobs.file_received(study_uid, str(ds.get("PatientID", "")) or None, calling, time.time())
        return SUCCESS

    # -- serving -------------------------------------------------------------------------------------------------
    def start(self) -> None:
        ae = AE(ae_title=self.config.ae_title)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_calling_aet = list(self.config.allowed_aes)
        ae.require_called_aet = True
        ae.maximum_pdu_size = 0  # unlimited
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_REQUESTED, self._on_requested),
        ]
        self._server = ae.start_server((self.config.host, self.config.port), block=False, evt_handlers=handlers)
        LOG.info("listening as %s on %s:%d", self.config.ae_title, self.config.host, self.config.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
