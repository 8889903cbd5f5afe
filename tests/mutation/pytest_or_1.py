"""Run pytest with the given arguments and exit 1 on any failure.

mutmut 2 counts only exit code 1 as a killed mutant: a mutant that breaks the import
makes pytest exit 2 (a collection error), which mutmut would count as a survivor.
"""

import sys

import pytest

if __name__ == "__main__":
    sys.exit(0 if pytest.main(sys.argv[1:]) == 0 else 1)
