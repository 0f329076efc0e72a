"""The functions a training SQL may call: an allowlist, as data.

`ALLOWED_FUNCTIONS` holds PostgreSQL function names: ordinary aggregates, window functions,
conditional, math, string, date/time, JSON and array functions — what analytical questions need
and nothing that reads server state (settings, files, roles, catalogs), writes (large objects,
sequences, notifications, replication, statistics resets), waits, or reaches other servers
(dblink). Anything not listed is refused, however harmless.

sqlglot turns many names into typed expression nodes (`date_trunc` -> TimestampTrunc, `now()` ->
CurrentTimestamp, `string_agg` -> GroupConcat), so the check also needs `ALLOWED_NODES`: the node
types those names parse into, plus the syntax PostgreSQL spells as special forms (CAST, CASE,
EXTRACT, ARRAY[...], EXISTS). tests/security/test_sql_guard.py holds the two lists to each other:
every allowed name parses into Anonymous or an allowed node, and no name PostgreSQL knows as a
function parses into an allowed node unless it is itself allowed.

Functions that build large values (`repeat`, `lpad`) are ordinary string functions and stay
allowed: validation sessions bound them with a statement timeout (explain_validator).
"""
from __future__ import annotations

AGGREGATE = """
count sum avg min max array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg
bool_and bool_or every bit_and bit_or bit_xor stddev stddev_pop stddev_samp variance var_pop
var_samp corr covar_pop covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope
regr_sxx regr_sxy regr_syy percentile_cont percentile_disc mode any_value
"""
WINDOW = "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value"
CONDITIONAL = "coalesce nullif greatest least num_nulls num_nonnulls like"
MATH = """
abs ceil ceiling floor round trunc sign mod power pow sqrt cbrt exp ln log log10 pi degrees radians div
gcd lcm width_bucket random sin cos tan asin acos atan atan2 scale
"""
STRING = """
length char_length character_length octet_length bit_length lower upper initcap substr substring
left right trim btrim ltrim rtrim lpad rpad replace translate reverse repeat concat concat_ws
position strpos split_part starts_with format md5 ascii chr regexp_replace regexp_match
regexp_matches regexp_split_to_array regexp_split_to_table regexp_like regexp_count regexp_instr
regexp_substr string_to_array string_to_table array_to_string to_hex encode decode overlay
quote_literal quote_nullable char convert
"""
DATE_TIME = """
now current_date current_time current_timestamp localtime localtimestamp date_trunc date_part
date_bin extract age make_date make_time make_timestamp make_timestamptz make_interval to_char
to_date to_timestamp to_number justify_days justify_hours justify_interval isfinite
clock_timestamp statement_timestamp transaction_timestamp date
"""
JSON = """
json_build_object jsonb_build_object json_build_array jsonb_build_array json_object jsonb_object
json_extract_path json_extract_path_text jsonb_extract_path jsonb_extract_path_text
json_array_length jsonb_array_length json_typeof jsonb_typeof to_json to_jsonb row_to_json
array_to_json json_object_keys jsonb_object_keys json_array_elements jsonb_array_elements
json_array_elements_text jsonb_array_elements_text json_each jsonb_each json_each_text
jsonb_each_text jsonb_set jsonb_insert jsonb_pretty jsonb_strip_nulls json_strip_nulls
jsonb_path_query jsonb_path_query_array jsonb_path_query_first jsonb_path_exists jsonb_path_match
jsonb_contains
"""
ARRAY = """
array_length cardinality unnest array_position array_positions array_remove array_replace
array_append array_prepend array_cat array_upper array_lower array_ndims array_dims generate_series
"""
# Keywords sqlglot reads as a call of an unknown function: `ROW(a, b)`.
CONSTRUCTORS = "row"

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    " ".join((AGGREGATE, WINDOW, CONDITIONAL, MATH, STRING, DATE_TIME, JSON, ARRAY, CONSTRUCTORS)).split())

# sqlglot node types (class names) the names above parse into.
FUNCTION_NODES = """
Count Sum Avg Min Max ArrayAgg GroupConcat JSONArrayAgg JSONObjectAgg JSONBObjectAgg LogicalAnd
LogicalOr BitwiseAndAgg BitwiseOrAgg BitwiseXorAgg Stddev StddevPop StddevSamp Variance VariancePop
Corr CovarPop CovarSamp RegrAvgx RegrAvgy RegrCount RegrIntercept RegrR2 RegrSlope RegrSxx RegrSxy
RegrSyy PercentileCont PercentileDisc Mode AnyValue
RowNumber Rank DenseRank PercentRank CumeDist Ntile Lag Lead FirstValue LastValue NthValue
Coalesce Nullif Greatest Least
Abs Ceil Floor Round Trunc Sign Pow Sqrt Cbrt Exp Ln Log Pi Degrees Radians WidthBucket Rand Sin Cos
Tan Asin Acos Atan Atan2
Length BitLength Lower Upper Initcap Substring Left Right Trim Pad Replace Translate Reverse Repeat
Concat ConcatWs StrPosition SplitPart StartsWith Format MD5 Ascii Chr RegexpReplace RegexpLike
RegexpCount RegexpInstr RegexpSubstr StringToArray ArrayToString Hex Encode Decode Overlay
CurrentTimestamp CurrentDate CurrentTime Localtime Localtimestamp TimestampTrunc DateTrunc Extract
DateBin TimeFromParts TimestampFromParts MakeInterval TimeToStr StrToDate StrToTime UnixToTime
ToNumber JustifyDays JustifyHours JustifyInterval Date
JSONObject JSONExtract JSONExtractScalar JSONBExtract JSONBExtractScalar JSONStripNulls
ArraySize Explode Unnest ArrayPosition ArrayRemove ArrayAppend ArrayPrepend ArrayConcat
ExplodingGenerateSeries GenerateSeries
"""
# Special forms and operators of PostgreSQL syntax that sqlglot also represents as function nodes
# (`CAST`, `CASE`, `ARRAY[...]`, `EXISTS`, `AND`, `COLLATE`, `@>`, `<@`, `&&`, `?`, `~`, `~*`...).
SYNTAX_NODES = """
Cast TryCast Case If Array Exists And Or Xor Collate ArrayContains ArrayContainedBy
ArrayContainsAll ArrayOverlaps JSONArrayContains JSONBContains JSONBContainsAllTopKeys
JSONBContainsAnyTopKeys JSONBContainsTopKey JSONBDeleteAtPath JSONBPathExists RegexpILike
RegexpFullMatch
"""

ALLOWED_NODES: frozenset[str] = frozenset(f"{FUNCTION_NODES} {SYNTAX_NODES}".split())

# The only schema a function name may be qualified with (`pg_catalog.lower(x)`): a function of a
# business schema is the database owner's code, whatever its name.
FUNCTION_SCHEMA = "pg_catalog"
