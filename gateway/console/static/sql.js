// A tiny SQL tokenizer for the console's editor: enough to colour keywords, strings, numbers, comments,
// quoted identifiers and parameters. It never fails: any character it does not know is plain text.
"use strict";

const SQL_KEYWORDS = new Set((
  "select from where group by order having limit offset join inner left right full outer cross on using as " +
  "and or not in is null like ilike between exists case when then else end distinct all union intersect " +
  "except with recursive values asc desc nulls first last over partition window rows range preceding " +
  "following unbounded current row cast true false interval date time timestamp explain analyze show " +
  "describe tables schemas catalogs columns lateral natural filter within fetch next only any some"
).split(" "));

const SQL_TYPES = new Set((
  "int integer bigint smallint tinyint decimal numeric real double float boolean bool varchar char text " +
  "string bytea binary varbinary"
).split(" "));

// one regular expression, one alternative per token kind (sticky: it tokenizes from lastIndex on)
const SQL_TOKEN = new RegExp([
  "(--[^\\n]*|/\\*[\\s\\S]*?(?:\\*/|$))",          // 1 comment
  "('(?:[^']|'')*'?)",                              // 2 string
  "(\"(?:[^\"]|\"\")*\"?|`[^`]*`?)",               // 3 quoted identifier
  "(\\d+(?:\\.\\d*)?(?:[eE][+-]?\\d+)?|\\.\\d+)",  // 4 number
  "([A-Za-z_][A-Za-z0-9_$]*)",                      // 5 word
  "(\\?|\\$\\d+|:[A-Za-z_]\\w*)",                   // 6 parameter
  "(\\s+)",                                         // 7 space
  "([\\s\\S])",                                     // 8 anything else
].join("|"), "y");

/** The tokens of `sql`: [{kind, text}], kind one of comment, string, ident, number, keyword, type, word,
 * param, space, punct. Concatenating their texts gives `sql` back. */
function sqlTokens(sql) {
  const out = [];
  SQL_TOKEN.lastIndex = 0;
  let m;
  while (SQL_TOKEN.lastIndex < sql.length && (m = SQL_TOKEN.exec(sql)) !== null) {
    let kind = "punct";
    if (m[1] !== undefined) kind = "comment";
    else if (m[2] !== undefined) kind = "string";
    else if (m[3] !== undefined) kind = "ident";
    else if (m[4] !== undefined) kind = "number";
    else if (m[5] !== undefined) {
      const word = m[5].toLowerCase();
      kind = SQL_KEYWORDS.has(word) ? "keyword" : SQL_TYPES.has(word) ? "type" : "word";
    } else if (m[6] !== undefined) kind = "param";
    else if (m[7] !== undefined) kind = "space";
    out.push({ kind, text: m[0] });
  }
  return out;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** `sql` as HTML, each token but spaces and words in a <span class="tok-KIND">; all text escaped. */
function highlightSql(sql) {
  return sqlTokens(sql).map((t) => (t.kind === "space" || t.kind === "word" || t.kind === "punct")
    ? escapeHtml(t.text) : `<span class="tok-${t.kind}">${escapeHtml(t.text)}</span>`).join("");
}
