"""Reference data of the simulated tenant: users, purchases, suppliers, VAT rates.

Everything here is fixed; only the choice among it is seeded. Users and purchases are also used
to turn a PUT's write shape (``ownerId``, ``purchase {id, type}``) back into read-shape references.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

#: Hrefs point at a fictitious tenant: clients must not follow them to the simulator.
BASE_URL = "https://sim.ilucca.net"

#: French VAT rates (20 % normal, 10 % intermediate, 5.5 % reduced) by Lucca rate type id.
TAX_RATE_IDS: dict[Decimal, int] = {Decimal("20"): 1, Decimal("10"): 2, Decimal("5.5"): 3}


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    last_name: str


USERS: tuple[User, ...] = (
    User(416, "Camille", "Durand"),
    User(417, "Julien", "Martin"),
    User(423, "Sophie", "Bernard"),
    User(431, "Thomas", "Petit"),
    User(438, "Léa", "Moreau"),
    User(442, "Nicolas", "Lefèvre"),
    User(457, "Inès", "Garnier"),
)
USERS_BY_ID: dict[int, User] = {user.id: user for user in USERS}
#: The identity an API key acts as: it becomes ``modifier`` after a PUT.
API_USER = User(9001, "Intégration", "Comptabilité fournisseurs")
#: The pseudo-user that receives documents sent by email to the inbox.
INBOX_ROBOT = User(9000, "Boîte", "de réception")


def user_ref(user_id: int) -> dict[str, Any]:
    """Read-shape user reference; unknown ids still get a plausible reference."""
    user = USERS_BY_ID.get(user_id) or _known_robot(user_id) or User(user_id, "Utilisateur", "")
    name = f"{user.first_name} {user.last_name}".strip()
    return {
        "id": user.id,
        "href": f"{BASE_URL}/api/v3/users/{user.id}",
        "name": name,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "pictureHref": None,
    }


def _known_robot(user_id: int) -> User | None:
    return {API_USER.id: API_USER, INBOX_ROBOT.id: INBOX_ROBOT}.get(user_id)


@dataclass(frozen=True)
class Purchase:
    id: int
    name: str
    type: str


PURCHASES: tuple[Purchase, ...] = (
    Purchase(3101, "Abonnement OVHcloud 2026", "Subscription"),
    Purchase(3102, "Forfait mobiles Orange 2026", "Subscription"),
    Purchase(3107, "Fournitures bureau T1", "OneTime"),
    Purchase(3112, "Séminaire équipe produit", "OneTime"),
    Purchase(3120, "Licences Atlassian", "Subscription"),
    Purchase(3125, "Mobilier open space", "OneTime"),
    Purchase(3131, "Location bureaux Lyon", "Subscription"),
)
PURCHASES_BY_ID: dict[int, Purchase] = {purchase.id: purchase for purchase in PURCHASES}


def purchase_ref(purchase_id: int, purchase_type: str | None) -> dict[str, Any]:
    known = PURCHASES_BY_ID.get(purchase_id)
    return {
        "id": purchase_id,
        "href": f"{BASE_URL}/cleemy-procurement/api/purchases/{purchase_id}",
        "name": known.name if known else None,
        "type": purchase_type if purchase_type is not None else (known.type if known else None),
    }


@dataclass(frozen=True)
class Supplier:
    name: str
    reference: str
    description: str
    account: str
    rates: tuple[str, ...]  # VAT rates in percent; empty: no French VAT (foreign or intra-EU)
    scale: tuple[int, int]  # excluding-tax amount range, in cents
    prefix: str = "F"
    intra_community: bool = False
    currency: str = "EUR"


SUPPLIERS: tuple[Supplier, ...] = (
    Supplier(
        "OVHcloud",
        "SUP-0101",
        "Hébergement cloud",
        "651100 Licences logiciels",
        ("20",),
        (2_000, 180_000),
    ),
    Supplier(
        "Orange Business",
        "SUP-0102",
        "Abonnement fibre et mobiles",
        "626000 Télécommunications",
        ("20",),
        (4_000, 90_000),
    ),
    Supplier(
        "Bouygues Telecom Entreprises",
        "SUP-0103",
        "Forfaits mobiles",
        "626000 Télécommunications",
        ("20",),
        (2_000, 40_000),
        prefix="FA",
    ),
    Supplier(
        "Lyreco France",
        "SUP-0104",
        "Fournitures de bureau",
        "606400 Fournitures administratives",
        ("20",),
        (1_500, 60_000),
    ),
    Supplier(
        "Manutan",
        "SUP-0105",
        "Mobilier de bureau",
        "606300 Petit équipement",
        ("20",),
        (10_000, 600_000),
    ),
    Supplier(
        "Bureau Vallée",
        "SUP-0106",
        "Papeterie",
        "606400 Fournitures administratives",
        ("20",),
        (800, 25_000),
    ),
    Supplier(
        "Sodexo",
        "SUP-0107",
        "Restauration d'entreprise",
        "625700 Réceptions",
        ("10",),
        (5_000, 300_000),
    ),
    Supplier(
        "Elior Services",
        "SUP-0108",
        "Plateaux-repas séminaire",
        "625700 Réceptions",
        ("10", "20"),
        (3_000, 150_000),
    ),
    Supplier(
        "Accor Hotels",
        "SUP-0109",
        "Hébergement déplacement",
        "625600 Missions",
        ("10",),
        (8_000, 120_000),
        prefix="INV",
    ),
    Supplier(
        "SNCF Voyageurs",
        "SUP-0110",
        "Billets de train",
        "625100 Voyages et déplacements",
        ("10",),
        (3_000, 60_000),
    ),
    Supplier(
        "Air France",
        "SUP-0111",
        "Billets d'avion",
        "625100 Voyages et déplacements",
        ("10",),
        (9_000, 250_000),
        prefix="INV",
    ),
    Supplier(
        "Librairie Eyrolles",
        "SUP-0112",
        "Ouvrages techniques",
        "618100 Documentation générale",
        ("5.5",),
        (1_800, 40_000),
    ),
    Supplier(
        "Éditions Dunod",
        "SUP-0113",
        "Abonnements revues",
        "618100 Documentation générale",
        ("5.5",),
        (2_500, 30_000),
    ),
    Supplier(
        "Engie", "SUP-0114", "Électricité des bureaux", "606100 Énergie", ("20",), (15_000, 400_000)
    ),
    Supplier(
        "Eau de Paris",
        "SUP-0115",
        "Consommation d'eau",
        "606100 Énergie",
        ("5.5",),
        (3_000, 50_000),
    ),
    Supplier(
        "Cabinet Fidal",
        "SUP-0116",
        "Honoraires juridiques",
        "622600 Honoraires",
        ("20",),
        (50_000, 900_000),
        prefix="FA",
    ),
    Supplier(
        "Regus France",
        "SUP-0118",
        "Location espace de travail",
        "613200 Locations immobilières",
        ("20",),
        (90_000, 1_200_000),
    ),
    Supplier(
        "DHL Express France",
        "SUP-0122",
        "Transport de colis",
        "624100 Transports",
        ("20",),
        (1_500, 80_000),
    ),
    Supplier(
        "La Poste", "SUP-0123", "Affranchissement", "626000 Frais postaux", ("20",), (500, 20_000)
    ),
    Supplier(
        "Adobe Systems Software Ireland",
        "SUP-0119",
        "Licences Creative Cloud",
        "651100 Licences logiciels",
        (),
        (6_000, 240_000),
        prefix="INV",
        intra_community=True,
    ),
    Supplier(
        "Atlassian B.V.",
        "SUP-0120",
        "Licences Jira et Confluence",
        "651100 Licences logiciels",
        (),
        (10_000, 500_000),
        prefix="INV",
        intra_community=True,
    ),
    Supplier(
        "SAP Deutschland SE",
        "SUP-0121",
        "Maintenance ERP",
        "615600 Maintenance",
        (),
        (100_000, 2_000_000),
        prefix="INV",
        intra_community=True,
    ),
    Supplier(
        "Amazon Web Services EMEA",
        "SUP-0124",
        "Infrastructure cloud",
        "651100 Licences logiciels",
        (),
        (5_000, 900_000),
        prefix="INV",
        intra_community=True,
        currency="USD",
    ),
    Supplier(
        "Sage UK",
        "SUP-0125",
        "Logiciel de paie (filiale UK)",
        "651100 Licences logiciels",
        (),
        (20_000, 200_000),
        prefix="INV",
        currency="GBP",
    ),
    Supplier(
        "Swisscom",
        "SUP-0126",
        "Télécoms bureau de Genève",
        "626000 Télécommunications",
        (),
        (5_000, 80_000),
        prefix="INV",
        currency="CHF",
    ),
)
#: Foreign-currency suppliers are rarer than French ones.
SUPPLIER_WEIGHTS: tuple[float, ...] = tuple(
    1.0 if supplier.currency == "EUR" else 0.25 for supplier in SUPPLIERS
)

BICS: tuple[str, ...] = ("BNPAFRPPXXX", "SOGEFRPPXXX", "CRLYFRPPXXX", "AGRIFRPPXXX", "CMCIFRPP")
