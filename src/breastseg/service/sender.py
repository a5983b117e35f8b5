"""Sending results to the PACS: C-STORE SCU (pynetdicom) of the SEG, SR and secondary capture of a job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    Comprehensive3DSRStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
)

from breastseg.errors import BreastsegError, InputError, MissingExtra

try:
    from pynetdicom import AE
except ModuleNotFoundError as exc:  # an optional dependency: see pyproject.toml's extras
    raise MissingExtra("service", "pynetdicom") from exc


class SendError(BreastsegError):
    """The destination could not be reached or did not store an instance."""


@dataclass(frozen=True)
class Destination:
    """A DICOM node results go to: ``AET@host:port``."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """``ORTHANC@127.0.0.1:4242`` → Destination."""
        aet, at, address = text.partition("@")
        host, colon, port = address.rpartition(":")
        if not at or not colon or not aet or not host or not port.isdigit():
            raise InputError(f"destination {text!r}: expected AET@host:port, e.g. ORTHANC@127.0.0.1:4242")
        return cls(aet, host, int(port))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def send_files(
    files: Sequence[Path], destination: Destination, calling_ae: str = "BREASTSEG", timeout_s: float = 30
) -> None:
    """C-STORE every file to ``destination`` in one association.

    Raises:
        SendError: the association was refused or an instance was not stored (the status is named).
    """
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop_class in (SegmentationStorage, Comprehensive3DSRStorage, SecondaryCaptureImageStorage):
        ae.add_requested_context(sop_class)
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        raise SendError(f"destination {destination} refused or did not answer the association")
    try:
        for path in files:
            status = assoc.send_c_store(pydicom.dcmread(path))
            code = int(status.Status) if status and "Status" in status else None
            if code is None or (code != 0x0000 and code not in (0xB000, 0xB007, 0xB006)):
                shown = "no answer" if code is None else f"status 0x{code:04X}"
                raise SendError(f"destination {destination} did not store {Path(path).name} ({shown})")
    finally:
        assoc.release()
