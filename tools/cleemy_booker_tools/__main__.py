"""``python -m cleemy_booker_tools``: the same as the ``cleemy-booker`` command."""

import sys

from cleemy_booker_tools.cli import main

sys.exit(main())
