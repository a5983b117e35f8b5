"""Ultrasound workflow: breast-tumour masks on 2D ultrasound (Yao et al. 2026; BUSI for public data)."""
