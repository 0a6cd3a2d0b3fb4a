"""DynamoDB expressions: tokenizer, recursive-descent parser, and evaluators compiled to closures.

Covers condition (and filter), key-condition, update and projection expressions with the grammar
the DynamoDB developer guide documents: document paths (``a.b[0]``, ``#placeholders``), values
(``:placeholders``), the comparators, ``BETWEEN``, ``IN``, ``AND``/``OR``/``NOT`` with AWS's
precedence (comparisons and functions > NOT > AND > OR), the functions ``attribute_exists``,
``attribute_not_exists``, ``attribute_type``, ``begins_with``, ``contains``, ``size``, and the
update clauses ``SET`` (with ``+``, ``-``, ``if_not_exists``, ``list_append``), ``REMOVE``, ``ADD``
and ``DELETE``. Keywords are case-insensitive; function names are case-sensitive, as in DynamoDB;
plain attribute names that are DynamoDB reserved words are refused, as DynamoDB refuses them.

Parsing happens once per expression string (``functools.lru_cache``): the simulation sends the
same few strings millions of times, so each call only runs the compiled closures.

Attribute values stay in DynamoDB JSON (``{"S": "x"}``). Numbers are kept as DynamoDB's canonical
strings (``"1.50"`` is stored and returned as ``"1.5"``, ``"1E2"`` as ``"100"``), compared as
``decimal.Decimal``; strings compare by code point, which is the same order as DynamoDB's UTF-8
byte order. Errors are ``ExpressionError``; the client turns them into ``ValidationException``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]
Names = Mapping[str, str]
Values = Mapping[str, AttributeValue]
PathPart = str | int
Path = tuple[PathPart, ...]
Operand = Callable[[Item, Names, Values], AttributeValue | None]
Predicate = Callable[[Item, Names, Values], bool]


class ExpressionError(Exception):
    """An invalid expression or value: a ``ValidationException`` in DynamoDB."""


SCALAR_TYPES: Final = frozenset({"S", "N", "B"})
SET_TYPES: Final = frozenset({"SS", "NS", "BS"})
ALL_TYPES: Final = frozenset({"S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL", "L", "M"})

MISSING_ATTRIBUTE: Final = (
    "The provided expression refers to an attribute that does not exist in the item"
)
INCORRECT_TYPE: Final = "An operand in the update expression has an incorrect data type"
INVALID_PATH: Final = "The document path provided in the update expression is invalid for update"

# From the DynamoDB developer guide ("Reserved words in DynamoDB").
_RESERVED_TEXT: Final = """
ABORT ABSOLUTE ACTION ADD AFTER AGENT AGGREGATE ALL ALLOCATE ALTER ANALYZE AND ANY ARCHIVE ARE
ARRAY AS ASC ASCII ASENSITIVE ASSERTION ASYMMETRIC AT ATOMIC ATTACH ATTRIBUTE AUTH
AUTHORIZATION AUTHORIZE AUTO AVG BACK BACKUP BASE BATCH BEFORE BEGIN BETWEEN BIGINT BINARY BIT
BLOB BLOCK BOOLEAN BOTH BREADTH BUCKET BULK BY BYTE CALL CALLED CALLING CAPACITY CASCADE
CASCADED CASE CAST CATALOG CHAR CHARACTER CHECK CLASS CLOB CLOSE CLUSTER CLUSTERED CLUSTERING
CLUSTERS COALESCE COLLATE COLLATION COLLECTION COLUMN COLUMNS COMBINE COMMENT COMMIT COMPACT
COMPILE COMPRESS CONDITION CONFLICT CONNECT CONNECTION CONSISTENCY CONSISTENT CONSTRAINT
CONSTRAINTS CONSTRUCTOR CONSUMED CONTINUE CONVERT COPY CORRESPONDING COUNT COUNTER CREATE CROSS
CUBE CURRENT CURSOR CYCLE DATA DATABASE DATE DATETIME DAY DEALLOCATE DEC DECIMAL DECLARE
DEFAULT DEFERRABLE DEFERRED DEFINE DEFINED DEFINITION DELETE DELIMITED DEPTH DEREF DESC
DESCRIBE DESCRIPTOR DETACH DETERMINISTIC DIAGNOSTICS DIRECTORIES DISABLE DISCONNECT DISTINCT
DISTRIBUTE DO DOMAIN DOUBLE DROP DUMP DURATION DYNAMIC EACH ELEMENT ELSE ELSEIF EMPTY ENABLE
END EQUAL EQUALS ERROR ESCAPE ESCAPED EVAL EVALUATE EXCEEDED EXCEPT EXCEPTION EXCEPTIONS
EXCLUSIVE EXEC EXECUTE EXISTS EXIT EXPLAIN EXPLODE EXPORT EXPRESSION EXTENDED EXTERNAL EXTRACT
FAIL FALSE FAMILY FETCH FIELDS FILE FILTER FILTERING FINAL FINISH FIRST FIXED FLATTERN FLOAT
FOR FORCE FOREIGN FORMAT FORWARD FOUND FREE FROM FULL FUNCTION FUNCTIONS GENERAL GENERATE GET
GLOB GLOBAL GO GOTO GRANT GREATER GROUP GROUPING HANDLER HASH HAVE HAVING HEAP HIDDEN HOLD HOUR
IDENTIFIED IDENTITY IF IGNORE IMMEDIATE IMPORT IN INCLUDING INCLUSIVE INCREMENT INCREMENTAL
INDEX INDEXED INDEXES INDICATOR INFINITE INITIALLY INLINE INNER INNTER INOUT INPUT INSENSITIVE
INSERT INSTEAD INT INTEGER INTERSECT INTERVAL INTO INVALIDATE IS ISOLATION ITEM ITEMS ITERATE
JOIN KEY KEYS LAG LANGUAGE LARGE LAST LATERAL LEAD LEADING LEAVE LEFT LENGTH LESS LEVEL LIKE
LIMIT LIMITED LINES LIST LOAD LOCAL LOCALTIME LOCALTIMESTAMP LOCATION LOCATOR LOCK LOCKS LOG
LOGED LONG LOOP LOWER MAP MATCH MATERIALIZED MAX MAXLEN MEMBER MERGE METHOD METRICS MIN MINUS
MINUTE MISSING MOD MODE MODIFIES MODIFY MODULE MONTH MULTI MULTISET NAME NAMES NATIONAL NATURAL
NCHAR NCLOB NEW NEXT NO NONE NOT NULL NULLIF NUMBER NUMERIC OBJECT OF OFFLINE OFFSET OLD ON
ONLINE ONLY OPAQUE OPEN OPERATOR OPTION OR ORDER ORDINALITY OTHER OTHERS OUT OUTER OUTPUT OVER
OVERLAPS OVERRIDE OWNER PAD PARALLEL PARAMETER PARAMETERS PARTIAL PARTITION PARTITIONED
PARTITIONS PATH PERCENT PERCENTILE PERMISSION PERMISSIONS PIPE PIPELINED PLAN POOL POSITION
PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVATE PRIVILEGES PROCEDURE PROCESSED PROJECT
PROJECTION PROPERTY PROVISIONING PUBLIC PUT QUERY QUIT QUORUM RAISE RANDOM RANGE RANK RAW READ
READS REAL REBUILD RECORD RECURSIVE REDUCE REF REFERENCE REFERENCES REFERENCING REGEXP REGION
REINDEX RELATIVE RELEASE REMAINDER RENAME REPEAT REPLACE REQUEST RESET RESIGNAL RESOURCE
RESPONSE RESTORE RESTRICT RESULT RETURN RETURNING RETURNS REVERSE REVOKE RIGHT ROLE ROLES
ROLLBACK ROLLUP ROUTINE ROW ROWS RULE RULES SAMPLE SATISFIES SAVE SAVEPOINT SCAN SCHEMA SCOPE
SCROLL SEARCH SECOND SECTION SEGMENT SEGMENTS SELECT SELF SEMI SENSITIVE SEPARATE SEQUENCE
SERIALIZABLE SESSION SET SETS SHARD SHARE SHARED SHORT SHOW SIGNAL SIMILAR SIZE SKEWED SMALLINT
SNAPSHOT SOME SOURCE SPACE SPACES SPARSE SPECIFIC SPECIFICTYPE SPLIT SQL SQLCODE SQLERROR
SQLEXCEPTION SQLSTATE SQLWARNING START STATE STATIC STATUS STORAGE STORE STORED STREAM STRING
STRUCT STYLE SUB SUBMULTISET SUBPARTITION SUBSTRING SUBTYPE SUM SUPER SYMMETRIC SYNONYM SYSTEM
TABLE TABLESAMPLE TEMP TEMPORARY TERMINATED TEXT THAN THEN THROUGHPUT TIME TIMESTAMP TIMEZONE
TINYINT TO TOKEN TOTAL TOUCH TRAILING TRANSACTION TRANSFORM TRANSLATE TRANSLATION TREAT TRIGGER
TRIM TRUE TRUNCATE TTL TUPLE TYPE UNDER UNDO UNION UNIQUE UNIT UNKNOWN UNLOGGED UNNEST
UNPROCESSED UNSIGNED UNTIL UPDATE UPPER URL USAGE USE USER USERS USING UUID VACUUM VALUE VALUED
VALUES VARCHAR VARIABLE VARIANCE VARINT VARYING VIEW VIEWS VIRTUAL VOID WAIT WHEN WHENEVER
WHERE WHILE WINDOW WITH WITHIN WITHOUT WORK WRAPPED WRITE YEAR ZONE
"""
RESERVED_WORDS: Final = frozenset(_RESERVED_TEXT.split())

# --- numbers -------------------------------------------------------------------------------------

# Wide enough that normalising never rounds a valid (38-digit) number.
_CONTEXT: Final = Context(prec=120, Emax=999_999, Emin=-999_999)
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def canonical_number(text: Any) -> str:
    """DynamoDB's canonical form of a number string; ``ExpressionError`` if it is not one."""
    # The common case, an unsigned integer without leading zeros, is already canonical.
    if isinstance(text, str) and type(text) is not str:
        text = str.__str__(text)
    if (
        type(text) is str
        and text.isdigit()
        and text.isascii()
        and (text[0] != "0" or len(text) == 1)
        and len(text) <= 38
    ):
        return text
    if type(text) is not str or not _NUMBER.match(text):
        raise ExpressionError(f"The parameter cannot be converted to a numeric value: {text}")
    return canonical_decimal(Decimal(text))


def canonical_decimal(value: Decimal) -> str:
    """Format a Decimal as DynamoDB returns numbers: no exponent, no trailing zeros."""
    if not value:
        return "0"
    value = _CONTEXT.normalize(value)
    if len(value.as_tuple().digits) > 38:
        raise ExpressionError("Attempting to store more than 38 significant digits in a Number")
    magnitude = value.adjusted()
    if magnitude > 125:
        raise ExpressionError(
            "Number overflow. Attempting to store a number with magnitude larger than supported "
            "range"
        )
    if magnitude < -130:
        raise ExpressionError(
            "Number underflow. Attempting to store a number with magnitude smaller than supported "
            "range"
        )
    return format(value, "f")


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # only reachable with values that bypassed import_value
        raise ExpressionError(
            f"The parameter cannot be converted to a numeric value: {text}"
        ) from exc


# --- attribute values ----------------------------------------------------------------------------

_SET_NAMES: Final = {"SS": "string", "NS": "number", "BS": "binary"}


def import_value(value: Any) -> AttributeValue:
    """Validate a caller's attribute value and return a private, normalised copy."""
    if type(value) is not dict or len(value) != 1:
        raise ExpressionError(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        )
    ((kind, data),) = value.items()
    if kind == "S":
        return {"S": data if type(data) is str else _string(data)}
    if kind == "N":
        return {"N": canonical_number(data)}
    if kind == "BOOL":
        if type(data) is not bool:
            raise ExpressionError("BOOL_VALUE can not be converted to Boolean")
        return {"BOOL": data}
    if kind == "NULL":
        if data is not True:
            raise ExpressionError(
                "One or more parameter values were invalid: Null attribute value types must "
                "have the value of true"
            )
        return {"NULL": True}
    if kind == "B":
        return {"B": _binary(data)}
    if kind in SET_TYPES:
        if not isinstance(data, list | tuple) or not data:
            raise ExpressionError(
                f"One or more parameter values were invalid: An {_SET_NAMES[kind]} set  may not "
                "be empty"
            )
        if kind == "SS":
            members: list[Any] = [_string(x) for x in data]
        elif kind == "NS":
            members = [canonical_number(x) for x in data]
        else:
            members = [_binary(x) for x in data]
        if len(set(members)) != len(members):
            shown = ", ".join(str(x) for x in data)
            raise ExpressionError(
                f"One or more parameter values were invalid: Input collection [{shown}] contains "
                "duplicates."
            )
        return {kind: members}
    if kind == "L":
        if not isinstance(data, list | tuple):
            raise ExpressionError("Invalid list attribute value")
        return {"L": [import_value(x) for x in data]}
    if kind == "M":
        if not isinstance(data, dict):
            raise ExpressionError("Invalid map attribute value")
        return {"M": {str(k): import_value(x) for k, x in data.items()}}
    raise ExpressionError(f"Supplied AttributeValue has an unsupported data type: {kind}")


def _string(data: Any) -> str:
    # A str subclass (a StrEnum member) goes out as its plain value, as botocore sends it.
    if not isinstance(data, str):
        raise ExpressionError("STRING_VALUE can not be converted to String")
    return str.__str__(data)


def _binary(data: Any) -> bytes:
    # boto3 accepts str for blobs and sends its UTF-8 bytes; it always returns bytes.
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    raise ExpressionError("BINARY_VALUE can not be converted to Binary")


def export_value(value: AttributeValue) -> AttributeValue:
    """A deep copy for the caller (stored values are shared, never mutated in place)."""
    ((kind, data),) = value.items()
    if kind == "M":
        return {"M": {k: export_value(x) for k, x in data.items()}}
    if kind == "L":
        return {"L": [export_value(x) for x in data]}
    if kind in SET_TYPES:
        return {kind: list(data)}
    return {kind: data}


def export_item(item: Item) -> Item:
    return {name: export_value(value) for name, value in item.items()}


def _number_size(text: str) -> int:
    digits = text.replace("-", "").replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def value_size(value: AttributeValue) -> int:
    """Bytes DynamoDB counts for a value (the developer guide's "item size" rules)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data) if data.isascii() else len(data.encode())
    if kind == "N":
        return _number_size(data)
    if kind == "B":
        return len(data)
    if kind == "BOOL" or kind == "NULL":
        return 1
    if kind == "SS":
        return sum(len(x.encode()) for x in data)
    if kind == "NS":
        return sum(_number_size(x) for x in data)
    if kind == "BS":
        return sum(len(x) for x in data)
    if kind == "L":
        return 3 + sum(1 + value_size(x) for x in data)
    return 3 + sum(1 + len(k.encode()) + value_size(x) for k, x in data.items())


def item_size(item: Item) -> int:
    total = 0
    for name, value in item.items():
        total += len(name) if name.isascii() else len(name.encode())
        text = value.get("S")  # the common case, inlined: this runs on every write
        if text is not None:
            total += len(text) if text.isascii() else len(text.encode())
        else:
            total += value_size(value)
    return total


def equal(left: AttributeValue, right: AttributeValue) -> bool:
    """DynamoDB equality: same type and same value (numbers numerically, sets unordered)."""
    if left == right:
        return True
    ((kind, a),) = left.items()
    ((other, b),) = right.items()
    if kind != other:
        return False
    if kind == "N":
        return _decimal(a) == _decimal(b)
    if kind == "NS":
        return {_decimal(x) for x in a} == {_decimal(x) for x in b}
    if kind == "SS" or kind == "BS":
        return set(a) == set(b)
    if kind == "L":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if kind == "M":
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return False


def compare(left: AttributeValue, right: AttributeValue) -> int | None:
    """-1, 0 or 1 for two S, N or B values of the same type; None if they are not comparable."""
    ((kind, a),) = left.items()
    ((other, b),) = right.items()
    if kind != other:
        return None
    if kind == "N":
        if a.isdigit() and b.isdigit():  # canonical non-negative integers: compare as text
            x: Any = (len(a), a)
            y: Any = (len(b), b)
        else:
            x, y = _decimal(a), _decimal(b)
    elif kind == "S" or kind == "B":
        # Code point order equals the UTF-8 byte order DynamoDB uses; bytes compare unsigned.
        x, y = a, b
    else:
        return None
    return int(x > y) - int(x < y)


def sort_key(value: AttributeValue) -> Any:
    """A Python value that sorts like DynamoDB sorts S, N and B keys."""
    ((kind, data),) = value.items()
    return _decimal(data) if kind == "N" else data


def show(value: AttributeValue) -> str:
    """How DynamoDB prints a value in error messages: ``{N:5}``."""
    ((kind, data),) = value.items()
    return f"{{{kind}:{data}}}"


# --- document paths ------------------------------------------------------------------------------


def resolve(path: Path, names: Names) -> Path:
    return tuple(names[p] if isinstance(p, str) and p[0] == "#" else p for p in path)


def _head(path: Path) -> str:
    head = path[0]
    if not isinstance(head, str):  # the grammar never starts a path with an index
        raise ExpressionError(INVALID_PATH)
    return head


def get_path(item: Item, path: Path) -> AttributeValue | None:
    current = item.get(_head(path))
    for part in path[1:]:
        if current is None:
            return None
        if isinstance(part, int):
            elements = current.get("L")
            if elements is None or part >= len(elements):
                return None
            current = elements[part]
        else:
            members = current.get("M")
            if members is None:
                return None
            current = members.get(part)
    return current


def set_path(item: Item, path: Path, value: AttributeValue) -> None:
    """Set ``path`` in ``item`` (a private copy), copying the nested containers on the way."""
    head = _head(path)
    if len(path) == 1:
        item[head] = value
    else:
        item[head] = _set_in(item.get(head), path, 1, value)


def _set_in(
    container: AttributeValue | None, path: Path, index: int, value: AttributeValue
) -> AttributeValue:
    part = path[index]
    last = index == len(path) - 1
    if isinstance(part, int):
        if container is None or "L" not in container:
            raise ExpressionError(INVALID_PATH)
        elements = list(container["L"])
        if last:
            # DynamoDB appends when the index is past the end of the list.
            if part < len(elements):
                elements[part] = value
            else:
                elements.append(value)
        elif part < len(elements):
            elements[part] = _set_in(elements[part], path, index + 1, value)
        else:
            raise ExpressionError(INVALID_PATH)
        return {"L": elements}
    if container is None or "M" not in container:
        raise ExpressionError(INVALID_PATH)
    members = dict(container["M"])
    members[part] = value if last else _set_in(members.get(part), path, index + 1, value)
    return {"M": members}


def remove_path(item: Item, path: Path) -> None:
    head = _head(path)
    if len(path) == 1:
        item.pop(head, None)
    elif head in item:
        item[head] = _remove_in(item[head], path, 1)
    else:
        raise ExpressionError(INVALID_PATH)


def _remove_in(container: AttributeValue, path: Path, index: int) -> AttributeValue:
    part = path[index]
    last = index == len(path) - 1
    if isinstance(part, int):
        if "L" not in container:
            raise ExpressionError(INVALID_PATH)
        elements = list(container["L"])
        if part < len(elements):
            if last:
                del elements[part]
            else:
                elements[part] = _remove_in(elements[part], path, index + 1)
        elif not last:
            raise ExpressionError(INVALID_PATH)
        return {"L": elements}
    if "M" not in container:
        raise ExpressionError(INVALID_PATH)
    members = dict(container["M"])
    if last:
        members.pop(part, None)
    elif part in members:
        members[part] = _remove_in(members[part], path, index + 1)
    else:
        raise ExpressionError(INVALID_PATH)
    return {"M": members}


@dataclass(frozen=True, slots=True)
class _Leaf:
    value: AttributeValue


def project(item: Item, paths: Iterable[Path]) -> Item:
    """The parts of ``item`` at ``paths``, shaped as DynamoDB returns a projection."""
    paths = list(paths)
    if all(len(p) == 1 for p in paths):
        heads = [_head(p) for p in paths]
        return {h: item[h] for h in heads if h in item}
    tree: dict[PathPart, Any] = {}
    for path in paths:
        value = get_path(item, path)
        if value is None:
            continue
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _Leaf(value)
    return {str(k): _fragment(v) for k, v in tree.items()}


def _fragment(node: dict[PathPart, Any] | _Leaf) -> AttributeValue:
    if isinstance(node, _Leaf):
        return node.value
    if all(isinstance(k, int) for k in node):
        # List elements come back in index order, without the ones not projected.
        return {"L": [_fragment(node[i]) for i in sorted(node, key=int)]}
    return {"M": {str(k): _fragment(v) for k, v in node.items()}}


def paths_overlap(paths: list[Path]) -> tuple[Path, Path] | None:
    """Two paths of one update where one is a prefix of (or equal to) the other."""
    for i, first in enumerate(paths):
        for second in paths[i + 1 :]:
            shorter = min(len(first), len(second))
            if first[:shorter] == second[:shorter]:
                return first, second
    return None


def show_path(path: Path) -> str:
    return "[" + ", ".join(str(p) for p in path) + "]"


# --- syntax tree ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathNode:
    parts: Path


@dataclass(frozen=True, slots=True)
class ValueNode:
    name: str


@dataclass(frozen=True, slots=True)
class SizeNode:
    path: PathNode


@dataclass(frozen=True, slots=True)
class IfNotExistsNode:
    path: PathNode
    default: Node


@dataclass(frozen=True, slots=True)
class ListAppendNode:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class ArithmeticNode:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class CompareNode:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class BetweenNode:
    operand: Node
    low: Node
    high: Node


@dataclass(frozen=True, slots=True)
class InNode:
    operand: Node
    options: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class FunctionNode:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AndNode:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class OrNode:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class NotNode:
    operand: Node


Node = (
    PathNode
    | ValueNode
    | SizeNode
    | IfNotExistsNode
    | ListAppendNode
    | ArithmeticNode
    | CompareNode
    | BetweenNode
    | InNode
    | FunctionNode
    | AndNode
    | OrNode
    | NotNode
)

# --- tokenizer and parser ------------------------------------------------------------------------

_TOKEN: Final = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<number>[0-9]+)|(?P<op><>|<=|>=|[=<>()\[\],.+\-]))"
)
_COMPARATORS: Final = frozenset({"=", "<>", "<", "<=", ">", ">="})
_CONDITION_FUNCTIONS: Final = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
}
_UPDATE_FUNCTIONS: Final = {"if_not_exists": 2, "list_append": 2}
_CLAUSES: Final = frozenset({"SET", "REMOVE", "ADD", "DELETE"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # name, value, ident, number, op, end
    text: str
    at: int


def _tokenize(source: str, label: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while True:
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            rest = source[position:]
            if rest.strip():
                bad = rest.strip()[0]
                near = _near(source, position)
                raise ExpressionError(
                    f'Invalid {label}: Syntax error; token: "{bad}", near: "{near}"'
                )
            tokens.append(_Token("end", "<EOF>", len(source)))
            return tokens
        kind = str(match.lastgroup)
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()


def _near(source: str, position: int) -> str:
    return source[max(0, position - 8) : position + 8].strip()


class _Parser:
    def __init__(self, source: str, label: str) -> None:
        self.source = source
        self.label = label
        self.tokens = _tokenize(source, label)
        self.index = 0
        self.names: set[str] = set()
        self.values: set[str] = set()

    # -- helpers

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def error(self, token: _Token | None = None) -> ExpressionError:
        token = token or self.peek()
        return ExpressionError(
            f'Invalid {self.label}: Syntax error; token: "{token.text}", '
            f'near: "{_near(self.source, token.at)}"'
        )

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"Invalid {self.label}: {message}")

    def is_op(self, text: str) -> bool:
        token = self.peek()
        return token.kind == "op" and token.text == text

    def is_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "ident" and token.text.upper() == word

    def expect_op(self, text: str) -> None:
        if not self.is_op(text):
            raise self.error()
        self.index += 1

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            raise self.error()

    # -- operands

    def path(self) -> PathNode:
        parts: list[PathPart] = [self.path_element()]
        while True:
            if self.is_op("."):
                self.index += 1
                parts.append(self.path_element())
            elif self.is_op("["):
                self.index += 1
                token = self.take()
                if token.kind != "number":
                    raise self.error(token)
                parts.append(int(token.text))
                self.expect_op("]")
            else:
                return PathNode(tuple(parts))

    def path_element(self) -> str:
        token = self.take()
        if token.kind == "name":
            self.names.add(token.text)
            return token.text
        if token.kind == "ident":
            if token.text.upper() in RESERVED_WORDS:
                raise self.fail(
                    f"Attribute name is a reserved keyword; reserved keyword: {token.text}"
                )
            return token.text
        raise self.error(token)

    def value(self) -> ValueNode:
        token = self.take()
        if token.kind != "value":
            raise self.error(token)
        self.values.add(token.text)
        return ValueNode(token.text)

    def is_call(self) -> bool:
        token = self.peek()
        if token.kind != "ident":  # also keeps the look-ahead inside the list (it ends with "end")
            return False
        following = self.tokens[self.index + 1]
        return following.kind == "op" and following.text == "("

    def arguments(self, name: str, parse: Callable[[], Node], count: int) -> tuple[Node, ...]:
        self.expect_op("(")
        args = [parse()]
        while self.is_op(","):
            self.index += 1
            args.append(parse())
        self.expect_op(")")
        if len(args) != count:
            raise self.fail(
                "Incorrect number of operands for operator or function; operator or function: "
                f"{name}, number of operands: {len(args)}"
            )
        return tuple(args)

    def condition_operand(self) -> Node:
        token = self.peek()
        if token.kind == "value":
            return self.value()
        if self.is_call():
            if token.text != "size":
                if token.text in _CONDITION_FUNCTIONS or token.text in _UPDATE_FUNCTIONS:
                    raise self.fail(
                        "The function is not allowed to be used this way in an expression; "
                        f"function: {token.text}"
                    )
                raise self.fail(f"Invalid function name; function: {token.text}")
            self.index += 1
            (arg,) = self.arguments("size", self.condition_operand, 1)
            if not isinstance(arg, PathNode):
                raise self.fail(
                    "Incorrect operand type for operator or function; operator or function: "
                    "size, operand type: value"
                )
            return SizeNode(arg)
        return self.path()

    # -- conditions: OR < AND < NOT < comparisons, functions, parentheses

    def condition(self) -> Node:
        terms = [self.conjunction()]
        while self.is_keyword("OR"):
            self.index += 1
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else OrNode(tuple(terms))

    def conjunction(self) -> Node:
        terms = [self.negation()]
        while self.is_keyword("AND"):
            self.index += 1
            terms.append(self.negation())
        return terms[0] if len(terms) == 1 else AndNode(tuple(terms))

    def negation(self) -> Node:
        if self.is_keyword("NOT"):
            self.index += 1
            return NotNode(self.negation())
        return self.primary()

    def primary(self) -> Node:
        if self.is_op("("):
            self.index += 1
            inner = self.condition()
            self.expect_op(")")
            return inner
        token = self.peek()
        if self.is_call() and token.text in _CONDITION_FUNCTIONS:
            self.index += 1
            args = self.arguments(
                token.text, self.condition_operand, _CONDITION_FUNCTIONS[token.text]
            )
            if token.text in (
                "attribute_exists",
                "attribute_not_exists",
                "attribute_type",
            ) and not isinstance(args[0], PathNode):
                raise self.fail(
                    "Operator or function requires a document path; operator or function: "
                    f"{token.text}"
                )
            return FunctionNode(token.text, args)
        left = self.condition_operand()
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARATORS:
            self.index += 1
            return CompareNode(token.text, left, self.condition_operand())
        if self.is_keyword("BETWEEN"):
            self.index += 1
            low = self.condition_operand()
            if not self.is_keyword("AND"):
                raise self.error()
            self.index += 1
            return BetweenNode(left, low, self.condition_operand())
        if self.is_keyword("IN"):
            self.index += 1
            self.expect_op("(")
            options = [self.condition_operand()]
            while self.is_op(","):
                self.index += 1
                options.append(self.condition_operand())
            self.expect_op(")")
            if len(options) > 100:
                raise self.fail("The IN operator is provided with too many operands; number: 101")
            return InNode(left, tuple(options))
        raise self.error()

    # -- update expressions

    def update(self) -> list[tuple[str, PathNode, Node | None]]:
        actions: list[tuple[str, PathNode, Node | None]] = []
        seen: set[str] = set()
        if self.peek().kind == "end":
            raise self.error()
        while self.peek().kind != "end":
            token = self.take()
            clause = token.text.upper()
            if token.kind != "ident" or clause not in _CLAUSES:
                raise self.error(token)
            if clause in seen:
                raise self.fail(
                    f'The "{clause}" section can only be used once in an update expression;'
                )
            seen.add(clause)
            while True:
                target = self.path()
                if clause == "SET":
                    self.expect_op("=")
                    actions.append((clause, target, self.set_value()))
                elif clause == "REMOVE":
                    actions.append((clause, target, None))
                else:
                    actions.append((clause, target, self.value()))
                if not self.is_op(","):
                    break
                self.index += 1
        return actions

    def set_value(self) -> Node:
        left = self.update_operand()
        if self.is_op("+") or self.is_op("-"):
            op = self.take().text
            return ArithmeticNode(op, left, self.update_operand())
        return left

    def update_operand(self) -> Node:
        token = self.peek()
        if token.kind == "value":
            return self.value()
        if self.is_call():
            name = token.text
            if name not in _UPDATE_FUNCTIONS:
                if name in _CONDITION_FUNCTIONS or name == "size":
                    raise self.fail(
                        f"The function is not allowed in an update expression; function: {name}"
                    )
                raise self.fail(f"Invalid function name; function: {name}")
            self.index += 1
            first, second = self.arguments(name, self.update_operand, 2)
            if name == "if_not_exists":
                if not isinstance(first, PathNode):
                    raise self.fail(
                        "Operator or function requires a document path; operator or function: "
                        "if_not_exists"
                    )
                return IfNotExistsNode(first, second)
            return ListAppendNode(first, second)
        return self.path()

    # -- projections

    def projection(self) -> list[PathNode]:
        paths = [self.path()]
        while self.is_op(","):
            self.index += 1
            paths.append(self.path())
        return paths


# --- compiled conditions -------------------------------------------------------------------------


def _operand(node: Node) -> Operand:
    if isinstance(node, ValueNode):
        key = node.name

        def value(item: Item, names: Names, values: Values) -> AttributeValue | None:
            return values[key]

        return value
    if isinstance(node, PathNode):
        return _path_getter(node.parts)
    if isinstance(node, SizeNode):
        get = _path_getter(node.path.parts)

        def size(item: Item, names: Names, values: Values) -> AttributeValue | None:
            found = get(item, names, values)
            if found is None:
                return None
            ((kind, data),) = found.items()
            if kind == "S":
                return {"N": str(len(data))}
            if kind == "B" or kind in SET_TYPES or kind == "L" or kind == "M":
                return {"N": str(len(data))}
            return None

        return size
    raise ExpressionError(f"Unsupported operand: {node}")


def _path_getter(parts: Path) -> Operand:
    head = _head(parts)
    if len(parts) == 1:
        if head[0] == "#":

            def named(item: Item, names: Names, values: Values) -> AttributeValue | None:
                return item.get(names[head])

            return named

        def plain(item: Item, names: Names, values: Values) -> AttributeValue | None:
            return item.get(head)

        return plain

    def nested(item: Item, names: Names, values: Values) -> AttributeValue | None:
        return get_path(item, resolve(parts, names))

    return nested


_ORDER_TESTS: Final[dict[str, Callable[[int], bool]]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _predicate(node: Node, label: str) -> Predicate:
    if isinstance(node, OrNode):
        terms = tuple(_predicate(t, label) for t in node.terms)

        def any_of(item: Item, names: Names, values: Values) -> bool:
            for term in terms:  # noqa: SIM110 - a plain loop is faster than any() on a generator
                if term(item, names, values):
                    return True
            return False

        return any_of
    if isinstance(node, AndNode):
        terms = tuple(_predicate(t, label) for t in node.terms)

        def all_of(item: Item, names: Names, values: Values) -> bool:
            for term in terms:  # noqa: SIM110 - a plain loop is faster than all() on a generator
                if not term(item, names, values):
                    return False
            return True

        return all_of
    if isinstance(node, NotNode):
        inner = _predicate(node.operand, label)

        def negated(item: Item, names: Names, values: Values) -> bool:
            return not inner(item, names, values)

        return negated
    if isinstance(node, CompareNode):
        return _comparison(node)
    if isinstance(node, BetweenNode):
        return _between(node, label)
    if isinstance(node, InNode):
        operand = _operand(node.operand)
        options = tuple(_operand(o) for o in node.options)

        def within(item: Item, names: Names, values: Values) -> bool:
            found = operand(item, names, values)
            if found is None:
                return False
            for option in options:
                candidate = option(item, names, values)
                if candidate is not None and (found == candidate or equal(found, candidate)):
                    return True
            return False

        return within
    if isinstance(node, FunctionNode):
        return _function(node, label)
    raise ExpressionError(
        f"Invalid {label}: The expression can not be evaluated on its own: {node}"
    )


def _comparison(node: CompareNode) -> Predicate:
    left, right = _operand(node.left), _operand(node.right)
    op = node.op
    if op == "=" or op == "<>":
        want = op == "="

        # A missing operand makes "=" false and "<>" true, as in DynamoDB.
        def equality(item: Item, names: Names, values: Values) -> bool:
            a = left(item, names, values)
            if a is None:
                return not want
            b = right(item, names, values)
            if b is None:
                return not want
            return (a == b or equal(a, b)) is want

        return equality
    test = _ORDER_TESTS[op]

    def ordering(item: Item, names: Names, values: Values) -> bool:
        a = left(item, names, values)
        if a is None:
            return False
        b = right(item, names, values)
        if b is None:
            return False
        result = compare(a, b)
        return result is not None and test(result)

    return ordering


def _between(node: BetweenNode, label: str) -> Predicate:
    operand, low, high = _operand(node.operand), _operand(node.low), _operand(node.high)

    def between(item: Item, names: Names, values: Values) -> bool:
        lo = low(item, names, values)
        hi = high(item, names, values)
        if lo is not None and hi is not None:
            bounds = compare(lo, hi)
            if bounds is not None and bounds > 0:
                raise ExpressionError(
                    f"Invalid {label}: The BETWEEN operator requires upper bound to be greater "
                    f"than or equal to lower bound; lower bound operand: AttributeValue: "
                    f"{show(lo)}, upper bound operand: AttributeValue: {show(hi)}"
                )
        found = operand(item, names, values)
        if found is None or lo is None or hi is None:
            return False
        above = compare(found, lo)
        below = compare(found, hi)
        return above is not None and below is not None and above >= 0 and below <= 0

    return between


def _function(node: FunctionNode, label: str) -> Predicate:
    name = node.name
    args = tuple(_operand(a) for a in node.args)
    target = args[0]
    if name == "attribute_exists":

        def exists(item: Item, names: Names, values: Values) -> bool:
            return target(item, names, values) is not None

        return exists
    if name == "attribute_not_exists":

        def not_exists(item: Item, names: Names, values: Values) -> bool:
            return target(item, names, values) is None

        return not_exists
    second = args[1]

    def operand_error(kind: str) -> ExpressionError:
        return ExpressionError(
            f"Invalid {label}: Incorrect operand type for operator or function; "
            f"operator or function: {name}, operand type: {kind}"
        )

    if name == "attribute_type":

        def has_type(item: Item, names: Names, values: Values) -> bool:
            wanted = second(item, names, values)
            if wanted is None or "S" not in wanted:
                raise operand_error(next(iter(wanted or {"M": 0})))
            if wanted["S"] not in ALL_TYPES:
                raise ExpressionError(
                    f"Invalid {label}: Invalid attribute type name found; type: {wanted['S']}, "
                    "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
                )
            found = target(item, names, values)
            return found is not None and wanted["S"] in found

        return has_type
    if name == "begins_with":

        def begins(item: Item, names: Names, values: Values) -> bool:
            prefix = second(item, names, values)
            if prefix is None:
                return False
            ((kind, start),) = prefix.items()
            if kind != "S" and kind != "B":
                raise operand_error(kind)
            found = target(item, names, values)
            if found is None:
                return False
            ((found_kind, data),) = found.items()
            return found_kind == kind and bool(data.startswith(start))

        return begins

    def contains(item: Item, names: Names, values: Values) -> bool:
        found = target(item, names, values)
        wanted = second(item, names, values)
        if found is None or wanted is None:
            return False
        ((kind, data),) = found.items()
        ((wanted_kind, element),) = wanted.items()
        if kind == "S" or kind == "B":
            return wanted_kind == kind and element in data
        if kind in SET_TYPES:
            if wanted_kind != kind[0]:
                return False
            if kind == "NS":
                return _decimal(element) in {_decimal(x) for x in data}
            return element in data
        if kind == "L":
            return any(equal(x, wanted) for x in data)
        return False

    return contains


# --- compiled updates ----------------------------------------------------------------------------


def _update_operand(node: Node) -> Callable[[Item, Names, Values], AttributeValue]:
    if isinstance(node, ValueNode):
        key = node.name

        def value(item: Item, names: Names, values: Values) -> AttributeValue:
            return values[key]

        return value
    if isinstance(node, PathNode):
        get = _path_getter(node.parts)

        def path(item: Item, names: Names, values: Values) -> AttributeValue:
            found = get(item, names, values)
            if found is None:
                raise ExpressionError(MISSING_ATTRIBUTE)
            return found

        return path
    if isinstance(node, IfNotExistsNode):
        get = _path_getter(node.path.parts)
        default = _update_operand(node.default)

        def if_not_exists(item: Item, names: Names, values: Values) -> AttributeValue:
            found = get(item, names, values)
            return default(item, names, values) if found is None else found

        return if_not_exists
    if isinstance(node, ListAppendNode):
        first, second = _update_operand(node.left), _update_operand(node.right)

        def list_append(item: Item, names: Names, values: Values) -> AttributeValue:
            a, b = first(item, names, values), second(item, names, values)
            for operand in (a, b):
                if "L" not in operand:
                    raise ExpressionError(
                        "Invalid UpdateExpression: Incorrect operand type for operator or "
                        f"function; operator or function: list_append, operand type: "
                        f"{next(iter(operand))}"
                    )
            return {"L": [*a["L"], *b["L"]]}

        return list_append
    if isinstance(node, ArithmeticNode):
        first, second = _update_operand(node.left), _update_operand(node.right)
        plus = node.op == "+"

        def arithmetic(item: Item, names: Names, values: Values) -> AttributeValue:
            a, b = first(item, names, values), second(item, names, values)
            if "N" not in a or "N" not in b:
                raise ExpressionError(INCORRECT_TYPE)
            x, y = _decimal(a["N"]), _decimal(b["N"])
            return {"N": canonical_decimal(_CONTEXT.add(x, y) if plus else _CONTEXT.subtract(x, y))}

        return arithmetic
    raise ExpressionError(f"Invalid UpdateExpression: unsupported operand {node}")


def _add(current: AttributeValue | None, value: AttributeValue) -> AttributeValue:
    ((kind, data),) = value.items()
    if kind != "N" and kind not in SET_TYPES:
        raise ExpressionError(INCORRECT_TYPE)
    if current is None:
        return value
    ((current_kind, existing),) = current.items()
    if current_kind != kind:
        raise ExpressionError(INCORRECT_TYPE)
    if kind == "N":
        return {"N": canonical_decimal(_CONTEXT.add(_decimal(existing), _decimal(data)))}
    present = set(existing)
    return {kind: [*existing, *(x for x in data if x not in present)]}


_UNCHANGED: Final[AttributeValue] = {}


def _delete(current: AttributeValue | None, value: AttributeValue) -> AttributeValue | None:
    """The set left after DELETE; None when it is empty (the attribute goes)."""
    ((kind, data),) = value.items()
    if kind not in SET_TYPES:
        raise ExpressionError(INCORRECT_TYPE)
    if current is None:
        return _UNCHANGED
    ((current_kind, existing),) = current.items()
    if current_kind != kind:
        raise ExpressionError(INCORRECT_TYPE)
    gone = set(data)
    left = [x for x in existing if x not in gone]
    return {kind: left} if left else None


@dataclass(frozen=True, slots=True)
class Action:
    clause: str  # SET, REMOVE, ADD, DELETE
    path: Path  # unresolved: str parts may be #placeholders
    single: str | None  # the only element of a one-element path (maybe a #placeholder)
    value: Callable[[Item, Names, Values], AttributeValue] | None


@dataclass(frozen=True, slots=True, eq=False)
class Condition:
    source: str
    tree: Node
    evaluate: Predicate
    names: frozenset[str]
    values: frozenset[str]


@dataclass(frozen=True, slots=True, eq=False)
class Update:
    source: str
    actions: tuple[Action, ...]
    names: frozenset[str]
    values: frozenset[str]
    #: Every target is one plain attribute name: no placeholder to resolve, no nesting.
    plain: bool
    #: Every target is a one-element path (a top-level attribute).
    flat: bool

    def targets(self, names: Names) -> list[Path]:
        """The resolved target paths, checked for overlaps (a ValidationException in AWS)."""
        if self.plain:
            paths: list[Path] = [a.path for a in self.actions]
        else:
            paths = []
            for action in self.actions:
                single = action.single
                if single is None:
                    paths.append(resolve(action.path, names))
                elif single[0] == "#":
                    paths.append((names[single],))
                else:
                    paths.append(action.path)
        if len(paths) > 1:
            if self.flat:
                if len({p[0] for p in paths}) != len(paths):
                    seen: dict[PathPart, Path] = {}
                    for path in paths:
                        if path[0] in seen:
                            return self._overlap(seen[path[0]], path)
                        seen[path[0]] = path
            else:
                clash = paths_overlap(paths)
                if clash is not None:
                    return self._overlap(*clash)
        return paths

    @staticmethod
    def _overlap(first: Path, second: Path) -> list[Path]:
        raise ExpressionError(
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove "
            f"or rewrite one of these paths; path one: {show_path(first)}, path two: "
            f"{show_path(second)}"
        )

    def apply(self, item: Item, targets: list[Path], names: Names, values: Values) -> Item:
        """The item after the update. Every operand sees the item as it was, as in DynamoDB."""
        results: list[AttributeValue | None] = []
        for action, target in zip(self.actions, targets, strict=True):
            clause, value = action.clause, action.value
            if value is None:  # REMOVE
                results.append(None)
            elif clause == "SET":
                results.append(value(item, names, values))
            else:
                operand = value(item, names, values)
                current = get_path(item, target)
                results.append(
                    _add(current, operand) if clause == "ADD" else _delete(current, operand)
                )
        updated = dict(item)
        removed: list[Path] = []
        for target, result in zip(targets, results, strict=True):
            if result is None:
                removed.append(target)
            elif result is _UNCHANGED:
                continue
            elif len(target) == 1:
                updated[target[0]] = result  # type: ignore[index]  # targets start with a name
            else:
                set_path(updated, target, result)
        if removed:
            # Later list indexes first, so "REMOVE l[0], l[1]" removes the two original elements.
            for target in sorted(removed, key=_removal_order, reverse=True):
                remove_path(updated, target)
        return updated


def _removal_order(path: Path) -> tuple[tuple[int, Any], ...]:
    return tuple((1, p) if isinstance(p, int) else (0, p) for p in path)


@dataclass(frozen=True, slots=True, eq=False)
class Projection:
    source: str
    paths: tuple[Path, ...]
    names: frozenset[str]

    def resolved(self, names: Names) -> list[Path]:
        return [resolve(p, names) for p in self.paths]


# --- entry points (cached per expression string) --------------------------------------------------


@lru_cache(maxsize=4096)
def parse_condition(source: str, label: str = "ConditionExpression") -> Condition:
    """A condition, filter or key-condition expression."""
    parser = _Parser(source, label)
    if parser.peek().kind == "end":
        raise ExpressionError(f"Invalid {label}: The expression can not be empty;")
    tree = parser.condition()
    parser.expect_end()
    return Condition(
        source,
        tree,
        _predicate(tree, label),
        frozenset(parser.names),
        frozenset(parser.values),
    )


@lru_cache(maxsize=4096)
def parse_update(source: str) -> Update:
    parser = _Parser(source, "UpdateExpression")
    parsed = parser.update()
    parser.expect_end()
    actions = []
    for clause, target, value in parsed:
        parts = target.parts
        single = _head(parts) if len(parts) == 1 else None
        compiled = None if value is None else _update_operand(value)
        actions.append(Action(clause, parts, single, compiled))
    return Update(
        source,
        tuple(actions),
        frozenset(parser.names),
        frozenset(parser.values),
        plain=all(a.single is not None and a.single[0] != "#" for a in actions),
        flat=all(a.single is not None for a in actions),
    )


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """An update and a condition parsed together, with the placeholders both use."""

    update: Update | None
    condition: Condition | None
    names: frozenset[str]
    values: frozenset[str]


@lru_cache(maxsize=4096)
def parse_plan(update: str | None, condition: str | None) -> Plan:
    parsed_update = parse_update(update) if update else None
    parsed_condition = parse_condition(condition) if condition else None
    names: frozenset[str] = frozenset()
    values: frozenset[str] = frozenset()
    for part in (parsed_update, parsed_condition):
        if part is not None:
            names |= part.names
            values |= part.values
    return Plan(parsed_update, parsed_condition, names, values)


@lru_cache(maxsize=4096)
def parse_projection(source: str) -> Projection:
    parser = _Parser(source, "ProjectionExpression")
    paths = parser.projection()
    parser.expect_end()
    resolved = tuple(p.parts for p in paths)
    return Projection(source, resolved, frozenset(parser.names))
