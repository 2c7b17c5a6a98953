"""PostgreSQL's ``TO_CHAR`` template patterns written as the chrono format DataFusion's ``to_char`` reads.

DataFusion 55's ``to_char(ts, format)`` takes a chrono (strftime-like) format and copies every other character:
``TO_CHAR(dt, 'YYYY-MM')`` as written answers the text ``YYYY-MM`` for every row (a sweep against PostgreSQL found
it on every placement). The patterns below (PostgreSQL 15 manual, "Template Patterns for Date/Time Formatting")
have a chrono equivalent that prints the same text; any other pattern is refused with an error naming it, never
answered wrong: ``Month`` and ``Day`` pad to nine characters (chrono cannot; ``FMMonth`` and ``FMDay`` do not pad),
upper-case names (``MON``, ``DAY``), ``Q``, ``D``, ``WW``, ``TZ`` and the ordinal suffixes have none.
"""

from __future__ import annotations

from connectors.errors import InvalidRequestError

#: PostgreSQL pattern -> chrono specifier (zero-padded as PostgreSQL pads), longest patterns first when matched
PATTERNS = {
    "HH24": "%H", "HH12": "%I", "HH": "%I", "MI": "%M", "SS": "%S", "MS": "%3f", "US": "%6f",
    "AM": "%p", "PM": "%p", "am": "%P", "pm": "%P",
    "IYYY": "%G", "YYYY": "%Y", "YY": "%y", "MM": "%m", "DDD": "%j", "DD": "%d", "IW": "%V", "ID": "%u",
    "Mon": "%b", "Dy": "%a",
}
#: with FM (fill mode: no padding)
FILL_MODE = {"HH24": "%-H", "HH12": "%-I", "HH": "%-I", "MI": "%-M", "SS": "%-S", "MM": "%-m", "DD": "%-d",
             "DDD": "%-j", "IW": "%-V", "Month": "%B", "Day": "%A", "Mon": "%b", "Dy": "%a"}
#: PostgreSQL patterns without one, matched so that no shorter pattern takes their letters (``SSSS`` is not ``SS SS``)
REFUSED = ("SSSSS", "SSSS", "Y,YYY", "YYY", "IYY", "IY", "TZH", "TZM", "TZ", "OF", "CC", "RM", "rm", "WW", "TH",
           "th", "A.M.", "P.M.", "a.m.", "p.m.", "B.C.", "A.D.", "b.c.", "a.d.", "BC", "AD", "bc", "ad")
_ORDER = sorted({*PATTERNS, *FILL_MODE, *REFUSED}, key=len, reverse=True)


def chrono_format(template: str) -> str:
    """The chrono format that prints what PostgreSQL's ``TO_CHAR`` template ``template`` prints.

        >>> chrono_format('YYYY-MM-DD HH24:MI:SS'), chrono_format('FMDD Mon YYYY "at" HH12 AM')
        ('%Y-%m-%d %H:%M:%S', '%-d %b %Y at %I %p')

    Raises InvalidRequestError naming the first pattern without one (a letter that is no pattern included: in
    PostgreSQL it may be one, ``TO_CHAR(d, 'Q')`` is the quarter).
    """
    out, i, fill = [], 0, False
    while i < len(template):
        if template.startswith("FM", i):
            fill, i = True, i + 2
            continue
        if template[i] == '"':  # quoted literal text
            end = template.find('"', i + 1)
            end = len(template) if end < 0 else end
            out.append(template[i + 1:end].replace("%", "%%"))
            i, fill = end + 1, False
            continue
        pattern = next((p for p in _ORDER if template.startswith(p, i)), None)
        if pattern is not None:
            chrono = None if pattern in REFUSED else (FILL_MODE if fill else PATTERNS).get(pattern)
            if chrono is None:
                break
            out.append(chrono)
            i, fill = i + len(pattern), False
            continue
        if template[i].isalpha():
            break
        out.append("%%" if template[i] == "%" else template[i])
        i += 1
    else:
        return "".join(out)
    shown = ("FM" if fill else "") + template[i:i + 5]
    raise InvalidRequestError(
        f"TO_CHAR template {template!r}: the pattern at {shown!r} cannot be computed here (DataFusion); supported: "
        "YYYY YY IYYY MM DD DDD IW ID HH24 HH12 HH MI SS MS US AM PM Mon Dy, FM before them and FMMonth FMDay, "
        'and "quoted text"')
