"""`python -m kubeforge` runs the operator."""

from kubeforge.main import main

main()
