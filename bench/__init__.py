"""The benchmark behind ``make bench``: tkr-host against a bare python-socketio server.

``python -m bench.run --help`` lists the knobs; bench/README.md explains the figures.
"""
