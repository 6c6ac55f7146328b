"""Entry script for the PyInstaller build: the same ``main()`` as the ``retina-desktop`` command."""

import multiprocessing
import sys

from retina_desktop.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # torch/DataLoader workers re-run the executable on Windows/macOS
    sys.exit(main())
