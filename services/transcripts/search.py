"""Full-text search over titles and transcripts with the database's own engine: FTS5 on SQLite, tsvector on PostgreSQL.

The search structures live in migrations 0004 and 0009 (SQLite keeps its FTS5 tables in step with triggers,
PostgreSQL computes its vectors itself), so no code path has to remember to update them. Each transcript is read in
its own language (languages.py), so one query finds words in every language the user speaks. A query finds the
recordings holding every one of its words, each as a word or the start of one ("plumb" finds "plumber"): FTS5 prefix
queries, PostgreSQL `:*` lexemes. User text never becomes query syntax: it is cut into words of letters, marks and
digits only, and each is quoted (FTS5 `"word"*`, PostgreSQL `'word':*`), so no quote or operator of the user's remains.
A stemmer keeps "connect" of "connection", so the words are indexed as said beside their stems (migration 0013): the
start "connecti" finds them. The list's filters (starred, a tag) are conditions on the recording row, values bound.
"""

import re
import unicodedata
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text
from sqlmodel import Session

from services.recordings.tags import tag_key
from services.transcripts.languages import NO_STEMMING, SQLITE_STEMMED, SQLITE_TOKENIZERS, SQLITE_WORDS

# Made by migrations 0004 and 0009 and deliberately not in the models: comparisons of models and migrations skip them.
SEARCH_SCHEMA_NAMES = frozenset(
    {
        *SQLITE_TOKENIZERS,
        *(
            f'{table}_{shadow}'
            for table in SQLITE_TOKENIZERS
            for shadow in ('config', 'content', 'data', 'docsize', 'idx')
        ),
        'search_vector',
        'ix_transcript_search_vector',
        'ix_recording_title_search',
    }
)
START, STOP = '\x02', '\x03'  # match markers: titles and transcripts are stored without control characters
MAX_TERMS = 16
WORD_CATEGORIES = frozenset('LMN')  # letters, marks (Hindi's vowel signs belong to their word) and numbers


def include_name(name: str | None, _type: str, _parents: object) -> bool:
    """Alembic's name filter: the search structures are the migrations' business, not the models'."""
    return name not in SEARCH_SCHEMA_NAMES


class SnippetPiece(BaseModel):
    """A run of snippet text; `match` marks the words the query found. Render as text, never as markup."""

    text: str
    match: bool


@dataclass(frozen=True)
class FoundRow:
    recording_id: uuid.UUID
    rank: float  # higher is better
    title: str  # marked
    body: str | None  # a marked passage of the transcript, when the transcript matched
    body_offset: int  # where the first match starts in the transcript text (1-based; 0: none)


@dataclass(frozen=True)
class Filters:
    """The list's filters, which a search keeps to: starred recordings only, those carrying a tag (any case)."""

    favourite: bool = False
    tag: str | None = None

    @property
    def shape(self) -> tuple[bool, bool]:
        return self.favourite, bool(self.tag and self.tag.strip())

    def params(self) -> dict[str, str]:
        return {'tag_key': tag_key(self.tag)} if self.shape[1] and self.tag else {}


def filter_sql(shape: tuple[bool, bool], alias: str = 'r') -> str:
    """`AND …` conditions on the recording `alias` for the filters in use (their values are bound as :tag_key)."""
    favourite, tagged = shape
    sql = f' AND {alias}.favourite' if favourite else ''
    if tagged:
        sql += f' AND EXISTS (SELECT 1 FROM recording_tag rt WHERE rt.recording_id = {alias}.id AND rt.key = :tag_key)'
    return sql


def pieces(marked: str) -> list[SnippetPiece]:
    """`a \x02b\x03 c` → [a , b (match), c]."""
    found: list[SnippetPiece] = []
    for part in re.split(f'({START}[^{STOP}]*{STOP})', marked):
        if part.startswith(START):
            found.append(SnippetPiece(text=part.strip(START + STOP), match=True))
        elif part:
            found.append(SnippetPiece(text=part.replace(START, '').replace(STOP, ''), match=False))
    return found


def query_words(query: str) -> list[str]:
    """The words of `query`, lower case: runs of letters, marks and digits; everything else separates them."""
    kept = ''.join(ch if unicodedata.category(ch)[0] in WORD_CATEGORIES else ' ' for ch in query.lower())
    return kept.split()[:MAX_TERMS]


def fts5_match(user_id: uuid.UUID, query: str) -> str | None:
    """An FTS5 expression for the user's rows holding every word of `query`, or a word it starts, in the title or the
    transcript."""
    terms = query_words(query)
    if not terms:
        return None
    words = ' AND '.join(f'"{term}"*' for term in terms)  # a word holds no quote: every term stays one string
    return f'owner_key:"{user_id.hex}" AND {{title body}}: ({words})'


def tsquery_text(query: str) -> str | None:
    """`to_tsquery` input for rows holding every word of `query`, or a word it starts; each config stems the words."""
    terms = query_words(query)
    return ' & '.join(f"'{term}':*" for term in terms) if terms else None  # no quote or backslash in a word


def matching_ids(session: Session, *, user_id: uuid.UUID, query: str, filters: Filters = Filters()) -> set[uuid.UUID]:
    """Every recording of the user that the full-text search finds, unranked (cheap: no snippets)."""
    if session.connection().dialect.name == 'postgresql':
        words = tsquery_text(query)
        if words is None:
            return set()
        statement = text(_pg_matching(filters.shape) + 'SELECT id FROM matching')
        statement = statement.bindparams(words=words, user_id=user_id, **filters.params())
    else:
        match = fts5_match(user_id, query)
        if match is None:
            return set()
        statement = _sqlite_matching(filters.shape).bindparams(match=match, **_sqlite_params(user_id, filters))
    return {uuid.UUID(str(row[0])) for row in session.exec(statement).all()}  # type: ignore[call-overload]


def find(
    session: Session, *, user_id: uuid.UUID, query: str, limit: int, offset: int = 0, filters: Filters = Filters()
) -> list[FoundRow]:
    """Best first; the page's snippets only are computed."""
    if session.connection().dialect.name == 'postgresql':
        words = tsquery_text(query)
        rows = _postgresql(session, user_id, words, (limit, offset), filters) if words else []
    else:
        match = fts5_match(user_id, query)
        rows = _sqlite(session, match, (limit, offset), filters, user_id) if match else []
    return [FoundRow(uuid.UUID(str(r[0])), float(r[1]), r[2], r[3], int(r[4] or 0)) for r in rows]


# A recording's entry is in the table of its language's tokenizer (languages.py): both are read, ranked together, then
# the snippets of the page only are computed (for every match, they would cost more than the search). The marking pass
# scans the matches once and joins the page to them: looked up row by row instead, FTS5 rebuilds a prefix term's whole
# list of matches for every row (10,000 transcripts, "anan": 1 s instead of 0.1 s).
def _sqlite_kept(shape: tuple[bool, bool]) -> str:
    """An FTS row's recording kept by the filters (the entry holds the recording's id as its text), among the owner's
    recordings only, so the filter reads one user's rows through the owner's index."""
    kept = f'SELECT r.id FROM recording r WHERE r.user_id = :owner_id{filter_sql(shape)}'
    return f' AND recording_key IN ({kept})' if any(shape) else ''


def _sqlite_params(user_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    """The filters' values; SQLite keeps ids as 32 hex digits (SQLAlchemy's Uuid), as the FTS entries do."""
    return {'owner_id': user_id.hex, **filters.params()} if any(filters.shape) else {}


@cache
def _sqlite_matching(shape: tuple[bool, bool]) -> Any:
    return text(
        ' UNION '.join(
            f'SELECT recording_key FROM {table} WHERE {table} MATCH :match{_sqlite_kept(shape)}'
            for table in SQLITE_TOKENIZERS
        )
    )


def _sqlite_ranked(shape: tuple[bool, bool]) -> str:
    """Each recording once: an English one's unstemmed words (SQLITE_WORDS, under its stemmed entry's rowid) count only
    where its stems did not match (bm25 is computed for the rows kept only)."""
    stemmed_rows = f'SELECT rowid FROM {SQLITE_STEMMED} WHERE {SQLITE_STEMMED} MATCH :match'
    return ' UNION ALL '.join(
        f'SELECT {source} AS source, rowid AS id, -bm25({table}, 0, 0, 4.0, 1.0) AS score FROM {table} '
        f'WHERE {table} MATCH :match{_sqlite_kept(shape)}'
        + (f' AND rowid NOT IN ({stemmed_rows})' if table == SQLITE_WORDS else '')
        for source, table in enumerate(SQLITE_TOKENIZERS)
    )


_SQLITE_MARKED = ' UNION ALL '.join(
    f"""
    SELECT recording_key, page.score, highlight({table}, 2, char(2), char(3)),
        snippet({table}, 3, char(2), char(3), '…', 24),
        instr(highlight({table}, 3, char(2), char(3)), char(2))
    FROM {table} CROSS JOIN page ON page.id = {table}.rowid AND page.source = {source}
    WHERE {table} MATCH :match
    """
    for source, table in enumerate(SQLITE_TOKENIZERS)
)


@cache
def _sqlite_statement(shape: tuple[bool, bool]) -> Any:
    ranked = _sqlite_ranked(shape)
    return text(
        f'WITH page AS MATERIALIZED ({ranked} ORDER BY score DESC, source, id LIMIT :limit OFFSET :offset)'
        f'{_SQLITE_MARKED} ORDER BY 2 DESC'
    )


def _sqlite(session: Session, match: str, page: tuple[int, int], filters: Filters, user_id: uuid.UUID) -> list[Any]:
    limit, offset = page
    params = _sqlite_params(user_id, filters)
    statement = _sqlite_statement(filters.shape).bindparams(match=match, limit=limit, offset=offset, **params)
    found = session.exec(statement).all()  # type: ignore[call-overload]
    return [(key, rank, title, body if START in body else None, at) for key, rank, title, body, at in found]


# Written against the indexes of migrations 0004 and 0009: the same expressions, so the planner can use them. The
# GIN index finds the transcripts that match the query as any language reads it (`any_reading`, the readings OR-ed,
# computed once), and each is kept if it matches as its own language reads it: the query is read once per
# configuration (`readings`), not once per row. A title without a transcript has no language: it is read word by word.
_PG_MATCHING = """
    WITH readings AS MATERIALIZED (
        SELECT c.oid::regconfig AS config, to_tsquery(c.oid::regconfig, :words) AS reading
        FROM pg_ts_config c WHERE c.cfgnamespace = 'pg_catalog'::regnamespace
    ),
    any_reading AS MATERIALIZED (
        SELECT string_agg(DISTINCT '(' || reading::text || ')', ' | ')::tsquery AS reading
        FROM readings WHERE numnode(reading) > 0
    ),
    matching AS (
        SELECT t.recording_id AS id
        FROM transcript t JOIN recording r ON r.id = t.recording_id
            JOIN readings ON readings.config = transcript_search_config(t.language)
        WHERE t.search_vector @@ (SELECT reading FROM any_reading) AND t.search_vector @@ readings.reading
            AND r.user_id = :user_id{filters}
        UNION
        SELECT r.id FROM recording r
        WHERE to_tsvector('{no_stemming}', r.title) @@ to_tsquery('{no_stemming}', :words)
            AND r.user_id = :user_id{filters}
    )
"""


def _pg_matching(shape: tuple[bool, bool]) -> str:
    return _PG_MATCHING.format(no_stemming=NO_STEMMING, filters=filter_sql(shape))


_POSTGRESQL_PAGE = f""",
    page AS (
        SELECT r.id, r.title, r.created_at, t.text, readings.config, readings.reading, ts_rank(
            coalesce(t.search_vector, setweight(to_tsvector('{NO_STEMMING}', r.title), 'A')), readings.reading, 1
        ) AS rank
        FROM matching JOIN recording r ON r.id = matching.id LEFT JOIN transcript t ON t.recording_id = r.id
            JOIN readings ON readings.config = transcript_search_config(t.language)
        ORDER BY rank DESC, r.created_at DESC, r.id LIMIT :limit OFFSET :offset
    )
    SELECT page.id, page.rank, ts_headline(page.config, page.title, page.reading, :whole),
        CASE WHEN page.text <> '' THEN ts_headline(
            words.config, page.text, words.reading, CASE WHEN length(page.text) <= :short THEN :whole ELSE :passage END
        ) END,
        CASE WHEN page.text <> '' THEN strpos(ts_headline(words.config, page.text, words.reading, :whole), chr(2)) END
    FROM page CROSS JOIN LATERAL (
        SELECT CASE WHEN stemmed.hit THEN page.config ELSE '{NO_STEMMING}'::regconfig END AS config,
            CASE WHEN stemmed.hit THEN page.reading ELSE to_tsquery('{NO_STEMMING}', :words) END AS reading
        FROM (SELECT to_tsvector(page.config, coalesce(page.text, '')) @@ page.reading AS hit) stemmed
    ) words
    ORDER BY page.rank DESC, page.created_at DESC, page.id
    """
# The passage is marked as the words' language reads them, or word by word where only the start of a word matched
# past its stem ("connecti": the vector's unstemmed words, migration 0013).
_MARKS = f'StartSel={START}, StopSel={STOP}'
SHORT_TEXT_CHARS = 160  # a transcript this short is its own passage: a fragment would drop its first words for nothing


@cache
def _postgresql_statement(shape: tuple[bool, bool]) -> Any:
    return text(_pg_matching(shape) + _POSTGRESQL_PAGE)


def _postgresql(session: Session, user_id: uuid.UUID, words: str, page: tuple[int, int], filters: Filters) -> list[Any]:
    limit, offset = page
    statement = _postgresql_statement(filters.shape).bindparams(
        words=words,
        user_id=user_id,
        limit=limit,
        offset=offset,
        whole=f'{_MARKS}, HighlightAll=true',
        passage=f'{_MARKS}, MaxWords=30, MinWords=12, MaxFragments=1',
        short=SHORT_TEXT_CHARS,
        **filters.params(),
    )
    found = session.exec(statement).all()  # type: ignore[call-overload]
    return [(key, rank, title, body if body and START in body else None, at) for key, rank, title, body, at in found]
