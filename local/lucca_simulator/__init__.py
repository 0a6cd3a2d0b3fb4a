"""A faithful local simulator of Lucca Cleemy Procurement's inbox API (standard library only).

    from local.lucca_simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(invoices=50, seed=7)) as sim:
        sim.url, sim.api_key      # http://127.0.0.1:PORT, "sim-api-key"
        sim.state()               # ground truth: documents, categories, bookings, request totals

Command line: ``python -m local.lucca_simulator --port 8900 --invoices 200 --seed 7``.
It is an independent stand-in for Lucca: it must not import the project's package.
"""

from .config import ConfigError, SimulatorConfig
from .server import Simulator

__all__ = ["ConfigError", "Simulator", "SimulatorConfig"]
