"""Which currencies are currencies: ISO 4217 alphabetic codes, as a static set.

Lucca's every published currency example reads ``"currency": "Invalid"`` (lucca-api.md): an
amount may come with a value that names no currency, and then nobody here knows what the amount
is worth (the review gate holds it, and never compares it with the auto-booking ceiling).

Where the codes come from: the alphabetic codes of ISO 4217 "List One" (current currencies and
funds) as Debian's ``iso-codes`` 4.15.0 carries them (``/usr/share/iso-codes/json/iso_4217.json``),
plus the two codes ISO's maintenance agency (SIX) added since: ``XCG`` (Caribbean guilder,
amendment 176) and ``ZWG`` (Zimbabwe Gold, amendment 177). Two codes of the list are left out
on purpose: ``XTS`` ("reserved for testing") and ``XXX`` ("no currency involved") name no
money an invoice can be paid in. A code withdrawn since (``HRK``, ``SLL``, ``ZWL``...) stays: an
invoice dated before the change may carry it. No dependency: the list changes once or twice a
year, and an amendment is one word added here.
"""

from __future__ import annotations

#: The codes as one text, a line per 21 codes (181 lines of one code each would read worse).
_CODES = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL "
    "BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF "
    "DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG "
    "HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP "
    "LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN "
    "NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG "
    "SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS "
    "UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD "
    "XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL"
)
ISO_4217_CODES: frozenset[str] = frozenset(_CODES.split())


def is_currency_code(currency: str | None) -> bool:
    """True for an ISO 4217 code, written as ISO writes it (three capitals: ``EUR``, not
    ``eur`` nor ``€``). None is not a code; whether an amount may lack a currency is the
    gate's business (some PUT responses have none)."""
    return currency is not None and currency in ISO_4217_CODES
