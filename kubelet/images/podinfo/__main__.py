"""`python -m kubelet.images.podinfo [flags]`: run the app outside an image (development)."""

import sys

from .main import main

sys.exit(main(version="dev", revision="dev"))
