/*-------------------------------------------------------------------------
 * mask.c
 *		Masking by job: the masking rules (parsed and applied here, in C),
 *		the two functions <table>_masked and masked_copy() compute masks
 *		with, and the trampolines that let a table's owner set a rule and
 *		(re)build the masked view as the extension's owner.
 *
 * The caller never chooses the rule: _mask_sealed() and _mask_plain() take
 * the table and column and read the column's rule themselves (mask_rules,
 * else the default of its customer_vault label, else withheld), so calling
 * them directly gives no more than the view.  _mask_sealed() takes the
 * CIPHERTEXT and the row context; the context must start with the column's
 * binding (a value of another column fails), the plaintext exists only in a
 * buffer here and is wiped once the mask is computed.  Both refuse a caller
 * without SELECT on any column of the table (the scope a masked reader is
 * given), _mask_plain() refuses a protected column, and both refuse a
 * partition (masks are computed through the partitioned table, whose
 * registry row and rules apply).
 *
 * <table>_masked is a security-barrier view owned by the member-less role
 * customer_vault_mask_owner (not the caller: a masked reader needs no SELECT
 * on the table's plaintext); row-level security applies to that role, and
 * policy expressions (may_process, current_user) run as the caller.
 *
 * Keyed rules (hash, fake) are for protected columns only, and a session
 * that could make a guess become a value of the column (as its current user
 * or any role its session user can SET ROLE to: write the table or one of
 * its partitions or children, or seal values: encrypt, encrypt_for_subject,
 * _seal_column) gets them withheld (NULL): otherwise the masks of guesses
 * are a dictionary.  So does every caller while the table has a policy and
 * an owner that is not trusted (a policy runs the owner's code as the
 * masked reader, and the owner can plant guesses).
 *
 * Keyed rules (hash, fake) use an HMAC under the "mask" HKDF subkey of the
 * first version of a named key (stable across rotations, different across
 * keys, never the blind-index subkey).  Values of protected columns are
 * hashed as "h" NUL value, so they join across protected columns sharing a
 * key; values of plaintext columns as "p" NUL binding NUL value, bound to
 * their column (whoever can SELECT one could otherwise hash guesses).
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_proc.h"
#include "commands/seclabel.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

typedef enum CvMaskKind
{
	CV_MASK_PARTIAL,
	CV_MASK_EMAIL_DOMAIN,
	CV_MASK_HASH,
	CV_MASK_GEN_DATE,
	CV_MASK_GEN_NUMBER,
	CV_MASK_CONSTANT,
	CV_MASK_NULL,
	CV_MASK_FAKE
} CvMaskKind;

#define CV_MASK_RULE_MAX	1024	/* bytes of a rule's text */
#define CV_MASK_TEXT_MAX	256		/* bytes of a pad, constant or step */
#define CV_MASK_KEEP_MAX	1000	/* characters partial() may keep */
#define CV_MASK_NUMBER_MAX	1000	/* bytes of a number generalize_number reads */

typedef struct CvMaskRule
{
	CvMaskKind	kind;
	int			prefix;			/* partial */
	int			suffix;			/* partial */
	int			param;			/* generalize_date precision, fake kind */
	char		text[CV_MASK_TEXT_MAX + 1];	/* pad, constant, step */
	char		key[NAMEDATALEN];	/* hash, fake: '' = not given */
} CvMaskRule;

static const char *const cv_date_precisions[] = {"day", "month", "year", "decade", NULL};
static const char *const cv_fake_kinds[] = {
	"first_name", "last_name", "name", "email", "phone", "city", "address", NULL
};

/* word lists for fake(); written for this extension */
static const char *const cv_first_names[] = {
	"Alma", "Bruno", "Carla", "Dario", "Edith", "Felix", "Greta", "Hugo", "Ines", "Jonas",
	"Karin", "Lorenz", "Mira", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tilda",
	"Ugo", "Vera", "Walter", "Xenia", "Yusuf", "Zora", "Anton", "Bea", "Cyril", "Dora",
	"Emil", "Frida", "Gustav", "Hanna", "Ivo", "Juna", "Kai", "Lena", "Milo", "Nora"
};
static const char *const cv_last_names[] = {
	"Ackerly", "Birchwood", "Calloway", "Dunmore", "Elmsford", "Fairhall", "Greaves",
	"Hollins", "Ivesdale", "Jarrow", "Kettering", "Lindqvist", "Marchetti", "Norcross",
	"Oakes", "Pemberton", "Quarrie", "Redfern", "Stanwick", "Thornbury", "Underhill",
	"Vasquez", "Whitlow", "Yardley", "Zellner", "Ashcombe", "Brightwater", "Coldridge",
	"Dovecote", "Eastleigh", "Fenwick", "Goldring", "Hartigan", "Inglewood", "Jessop",
	"Kinsale", "Larkspur", "Merriweather", "Nettleton", "Orchard"
};
static const char *const cv_cities[] = {
	"Aldermoor", "Bramblecombe", "Castlereach", "Dunhollow", "Eastvale", "Fernbridge",
	"Glenford", "Harrowgate", "Ivybridge Cross", "Juniper Falls", "Kingsmere", "Lowbury",
	"Marshfield", "Northwick", "Oakhaven", "Pinecrest", "Queensferry", "Riverton",
	"Stonebury", "Thistledown", "Upperwell", "Valemouth", "Westholm", "Yarrowby",
	"Ashford Green", "Bellmoor", "Cedar Point", "Driftwood Bay", "Elmstead", "Foxley"
};
static const char *const cv_streets[] = {
	"Acorn", "Badger", "Chestnut", "Dockside", "Elder", "Foundry", "Granary", "Heron",
	"Ironworks", "Jasmine", "Kestrel", "Lantern", "Millpond", "Nightingale", "Orchid",
	"Pebble", "Quarry", "Rowan", "Saddler", "Tannery", "Umber", "Vinegar", "Willow",
	"Yew", "Anchor", "Beacon", "Copper", "Drover", "Ember", "Falcon"
};
static const char *const cv_street_types[] = {
	"Street", "Road", "Lane", "Avenue", "Close", "Way", "Row", "Terrace", "Place", "Court"
};
static const char *const cv_email_domains[] = {"example.com", "example.org", "example.net"};

#define CV_NELEM(a) ((int) (sizeof(a) / sizeof((a)[0])))

/* what one call site (or one direct call) masks: resolved once per statement */
typedef struct CvMaskState
{
	bool		valid;
	Oid			userid;			/* the caller it was resolved for */
	Oid			relid;
	NameData	column;
	bool		sealed;			/* _mask_sealed: a protected column */
	bool		withhold;		/* a keyed rule the caller may not see */
	uint64		epoch;			/* key epoch key belongs to */
	CvMaskRule	rule;
	CvKey	   *key;			/* hash, fake */
	char		binding[4 * NAMEDATALEN + 32];
	int			bindlen;
} CvMaskState;

/* set while the extension itself (re)defines a masked view */
static bool cv_mask_view_active = false;

PG_FUNCTION_INFO_V1(cv_mask_sealed);
PG_FUNCTION_INFO_V1(cv_mask_plain);
PG_FUNCTION_INFO_V1(cv_mask_rule);
PG_FUNCTION_INFO_V1(cv_mask_view_is_active);
PG_FUNCTION_INFO_V1(cv_mask_build_view);
PG_FUNCTION_INFO_V1(cv_mask_column_set);
PG_FUNCTION_INFO_V1(cv_mask_label_rule);

/* ---------- parsing rules ---------- */

typedef struct CvMaskArg
{
	char		kind;			/* 'n' number, 's' string, 'i' identifier */
	char	   *val;
} CvMaskArg;

/* a rule that cannot be parsed: one error shape for all */
static void
cv_mask_bad(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid masking rule"),
			 errdetail("%s", detail),
			 errhint("Rules: partial(prefix, \"pad\", suffix), email_domain, hash, hash(key), generalize_date(day|month|year|decade), generalize_number(step), constant(\"value\"), null, fake(first_name|last_name|name|email|phone|city|address[, key]), default.")));
}

/* index of s in a NULL-terminated list, or -1 */
static int
cv_mask_lookup(const char *const *list, const char *s)
{
	int			i;

	for (i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

/* a non-negative integer argument no larger than max */
static int
cv_mask_int_arg(const CvMaskArg *a, int max, const char *what)
{
	const char *p;
	long		v = 0;

	if (a->kind != 'n')
		cv_mask_bad(psprintf("The %s must be an integer.", what));
	for (p = a->val; *p; p++)
		if (*p < '0' || *p > '9')
			cv_mask_bad(psprintf("The %s must be a non-negative integer.", what));
	if (strlen(a->val) <= 6)
		v = strtol(a->val, NULL, 10);
	if (strlen(a->val) > 6 || v > max)
		cv_mask_bad(psprintf("The %s must be at most %d.", what, max));
	return (int) v;
}

/* a key name argument (identifier or string) */
static void
cv_mask_key_arg(const CvMaskArg *a, CvMaskRule *r)
{
	if (a->kind == 'n' || a->val[0] == '\0' || strlen(a->val) >= NAMEDATALEN)
		cv_mask_bad("A key name is an identifier or a double-quoted string of 1 to 63 bytes.");
	strlcpy(r->key, a->val, NAMEDATALEN);
}

/* whether s is a plain decimal number: [+-]digits[.digits] (no exponent) */
static bool
cv_mask_is_number(const char *s, int len)
{
	int			i = 0,
				digits = 0;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++, digits++;
	if (i < len && s[i] == '.')
	{
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++, digits++;
	}
	return digits > 0 && i == len;
}

/*
 * Parse a rule: name, or name(arg, ...) with integers, identifiers and
 * double-quoted strings ("" for a quote).  "default" only when allowed.
 */
static void
cv_mask_parse(const char *s, CvMaskRule *r, bool allow_default, bool *is_default)
{
	char		name[64];
	int			nlen = 0;
	CvMaskArg	args[4];
	int			nargs = 0;
	const char *p = s;

	memset(r, 0, sizeof(CvMaskRule));
	if (is_default)
		*is_default = false;
	if (strlen(s) > CV_MASK_RULE_MAX)
		cv_mask_bad(psprintf("A rule is at most %d bytes long.", CV_MASK_RULE_MAX));
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
		   (nlen > 0 && *p >= '0' && *p <= '9'))
	{
		if (nlen >= (int) sizeof(name) - 1)
			cv_mask_bad("The rule name is too long.");
		name[nlen++] = pg_ascii_tolower((unsigned char) *p);
		p++;
	}
	name[nlen] = '\0';
	if (nlen == 0)
		cv_mask_bad("A rule starts with its name.");
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p == '(')
	{
		p++;
		for (;;)
		{
			StringInfoData buf;

			while (*p == ' ' || *p == '\t' || *p == '\n')
				p++;
			if (nargs >= CV_NELEM(args))
				cv_mask_bad("A rule takes at most three parameters.");
			initStringInfo(&buf);
			if (*p == '"')
			{
				p++;
				for (;;)
				{
					if (*p == '\0')
						cv_mask_bad("A double-quoted string is not closed.");
					if (*p == '"' && p[1] == '"')
					{
						appendStringInfoChar(&buf, '"');
						p += 2;
					}
					else if (*p == '"')
					{
						p++;
						break;
					}
					else
						appendStringInfoChar(&buf, *p++);
				}
				args[nargs].kind = 's';
			}
			else if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.')
			{
				while ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.')
					appendStringInfoChar(&buf, *p++);
				args[nargs].kind = 'n';
			}
			else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_')
			{
				while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
					   (*p >= '0' && *p <= '9'))
					appendStringInfoChar(&buf, *p++);
				args[nargs].kind = 'i';
			}
			else
				cv_mask_bad("A parameter is an integer, an identifier or a double-quoted string.");
			args[nargs++].val = buf.data;
			while (*p == ' ' || *p == '\t' || *p == '\n')
				p++;
			if (*p == ',')
			{
				p++;
				continue;
			}
			if (*p == ')')
			{
				p++;
				break;
			}
			cv_mask_bad("Parameters are separated by commas and closed by a parenthesis.");
		}
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
	}
	if (*p != '\0')
		cv_mask_bad("Nothing may follow a rule.");

	if (strcmp(name, "partial") == 0)
	{
		r->kind = CV_MASK_PARTIAL;
		if (nargs != 3)
			cv_mask_bad("partial takes three parameters: prefix, \"pad\", suffix.");
		r->prefix = cv_mask_int_arg(&args[0], CV_MASK_KEEP_MAX, "prefix of partial");
		r->suffix = cv_mask_int_arg(&args[2], CV_MASK_KEEP_MAX, "suffix of partial");
		if (args[1].kind != 's' || strlen(args[1].val) > 64)
			cv_mask_bad("The pad of partial is a double-quoted string of at most 64 bytes.");
		strlcpy(r->text, args[1].val, sizeof(r->text));
	}
	else if (strcmp(name, "email_domain") == 0 || strcmp(name, "null") == 0)
	{
		r->kind = name[0] == 'e' ? CV_MASK_EMAIL_DOMAIN : CV_MASK_NULL;
		if (nargs != 0)
			cv_mask_bad(psprintf("%s takes no parameters.", name));
	}
	else if (strcmp(name, "hash") == 0)
	{
		r->kind = CV_MASK_HASH;
		if (nargs > 1)
			cv_mask_bad("hash takes at most one parameter, a key name.");
		if (nargs == 1)
			cv_mask_key_arg(&args[0], r);
	}
	else if (strcmp(name, "generalize_date") == 0)
	{
		r->kind = CV_MASK_GEN_DATE;
		r->param = 2;			/* year */
		if (nargs > 1 || (nargs == 1 && (args[0].kind != 'i' ||
										 (r->param = cv_mask_lookup(cv_date_precisions, args[0].val)) < 0)))
			cv_mask_bad("generalize_date takes one precision: day, month, year or decade.");
	}
	else if (strcmp(name, "generalize_number") == 0)
	{
		r->kind = CV_MASK_GEN_NUMBER;
		if (nargs != 1 || args[0].kind != 'n' ||
			strlen(args[0].val) > 40 || !cv_mask_is_number(args[0].val, strlen(args[0].val)) ||
			args[0].val[0] == '-' ||
			strspn(args[0].val, "+0.") == strlen(args[0].val))
			cv_mask_bad("generalize_number takes one positive step, e.g. generalize_number(10).");
		strlcpy(r->text, args[0].val[0] == '+' ? args[0].val + 1 : args[0].val, sizeof(r->text));
	}
	else if (strcmp(name, "constant") == 0)
	{
		r->kind = CV_MASK_CONSTANT;
		if (nargs != 1 || strlen(args[0].val) > CV_MASK_TEXT_MAX)
			cv_mask_bad(psprintf("constant takes one value of at most %d bytes.", CV_MASK_TEXT_MAX));
		strlcpy(r->text, args[0].val, sizeof(r->text));
	}
	else if (strcmp(name, "fake") == 0)
	{
		r->kind = CV_MASK_FAKE;
		if (nargs < 1 || nargs > 2 || args[0].kind != 'i' ||
			(r->param = cv_mask_lookup(cv_fake_kinds, args[0].val)) < 0)
			cv_mask_bad("fake takes a kind (first_name, last_name, name, email, phone, city, address) and optionally a key name.");
		if (nargs == 2)
			cv_mask_key_arg(&args[1], r);
	}
	else if (strcmp(name, "default") == 0 && allow_default && nargs == 0)
	{
		if (is_default)
			*is_default = true;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown masking rule \"%s\"", name),
				 errhint("Rules: partial, email_domain, hash, generalize_date, generalize_number, constant, null, fake; \"default\" goes back to the label's default.")));
}

/* append s as a double-quoted rule string */
static void
cv_mask_append_quoted(StringInfo buf, const char *s)
{
	appendStringInfoChar(buf, '"');
	for (; *s; s++)
	{
		if (*s == '"')
			appendStringInfoChar(buf, '"');
		appendStringInfoChar(buf, *s);
	}
	appendStringInfoChar(buf, '"');
}

/* the canonical text of a parsed rule (what mask_rules stores) */
static char *
cv_mask_format(const CvMaskRule *r)
{
	StringInfoData buf;

	initStringInfo(&buf);
	switch (r->kind)
	{
		case CV_MASK_PARTIAL:
			appendStringInfo(&buf, "partial(%d,", r->prefix);
			cv_mask_append_quoted(&buf, r->text);
			appendStringInfo(&buf, ",%d)", r->suffix);
			break;
		case CV_MASK_EMAIL_DOMAIN:
			appendStringInfoString(&buf, "email_domain");
			break;
		case CV_MASK_HASH:
			appendStringInfoString(&buf, "hash(");
			cv_mask_append_quoted(&buf, r->key);
			appendStringInfoChar(&buf, ')');
			break;
		case CV_MASK_GEN_DATE:
			appendStringInfo(&buf, "generalize_date(%s)", cv_date_precisions[r->param]);
			break;
		case CV_MASK_GEN_NUMBER:
			appendStringInfo(&buf, "generalize_number(%s)", r->text);
			break;
		case CV_MASK_CONSTANT:
			appendStringInfoString(&buf, "constant(");
			cv_mask_append_quoted(&buf, r->text);
			appendStringInfoChar(&buf, ')');
			break;
		case CV_MASK_NULL:
			appendStringInfoString(&buf, "null");
			break;
		case CV_MASK_FAKE:
			appendStringInfo(&buf, "fake(%s,", cv_fake_kinds[r->param]);
			cv_mask_append_quoted(&buf, r->key);
			appendStringInfoChar(&buf, ')');
			break;
	}
	return buf.data;
}

/*
 * The rule of a column without a rule of its own: by its label; a
 * protected or ruled column without a label is withheld.
 */
static const char *
cv_mask_default_rule(const char *label)
{
	if (label == NULL)
		return "null";
	if (strcmp(label, "pii:contact") == 0)
		return "partial(1,\"***\",2)";
	if (strcmp(label, "pii:financial") == 0)
		return "partial(0,\"****\",4)";
	if (strcmp(label, "pii") == 0)
		return "partial(1,\"***\",0)";
	return "null";				/* pii:special and anything unknown: withheld */
}

/* ---------- applying rules ---------- */

/* HMAC of tag NUL [binding NUL] value under the key's masking subkey */
static void
cv_mask_mac(CvMaskState *st, const char *tag, const char *pt, size_t len, uint8 out[CV_MAC_LEN])
{
	size_t		tlen = strlen(tag);
	size_t		blen = st->sealed ? 0 : st->bindlen + 1;
	size_t		mlen = tlen + 1 + blen + len;
	char	   *msg = palloc(mlen);
	bool		ok;

	memcpy(msg, tag, tlen);
	msg[tlen] = '\0';
	if (!st->sealed)
	{
		memcpy(msg + tlen + 1, st->binding, st->bindlen);
		msg[tlen + 1 + st->bindlen] = '\0';
	}
	memcpy(msg + tlen + 1 + blen, pt, len);
	ok = st->key != NULL && st->key->mask != NULL &&
		cv_mac_compute(st->key->mask, (const uint8 *) msg, mlen, out);
	cv_wipe(msg, mlen);
	pfree(msg);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("could not compute HMAC-SHA-256")));
}

/* byte offset of character number n of s (or len) */
static int
cv_mask_char_offset(const char *s, int len, int n)
{
	int			off = 0;

	while (n-- > 0 && off < len)
		off += Min(pg_mblen(s + off), len - off);
	return off;
}

/* a 16-bit number from two bytes of a MAC */
#define CV_MAC16(m, i) ((((uint32) (m)[(i)]) << 8) | (m)[(i) + 1])

/* ASCII lower case of a word, into buf */
static void
cv_mask_append_lower(StringInfo buf, const char *s)
{
	for (; *s; s++)
		if (*s != ' ')
			appendStringInfoChar(buf, pg_ascii_tolower((unsigned char) *s));
}

/* a numeric from text already checked by cv_mask_is_number */
static Numeric
cv_mask_numeric(const char *s)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
}

/*
 * The mask of a plaintext under the state's rule; NULL when withheld or
 * when the rule cannot read the value (generalize_* of something else).
 * Never raises an error about the value itself.
 */
static text *
cv_mask_apply(CvMaskState *st, const char *pt, int len)
{
	const CvMaskRule *r = &st->rule;
	StringInfoData buf;
	uint8		mac[CV_MAC_LEN];

	initStringInfo(&buf);
	switch (r->kind)
	{
		case CV_MASK_NULL:
			return NULL;
		case CV_MASK_CONSTANT:
			appendStringInfoString(&buf, r->text);
			break;
		case CV_MASK_PARTIAL:
			{
				int			nchars = pg_mbstrlen_with_len(pt, len);

				/* never more than half of the characters (short values: the pad alone) */
				if ((r->prefix + r->suffix) * 2 > nchars)
					appendStringInfoString(&buf, r->text);
				else
				{
					int			pre = cv_mask_char_offset(pt, len, r->prefix);
					int			suf = cv_mask_char_offset(pt, len, nchars - r->suffix);

					appendBinaryStringInfo(&buf, pt, pre);
					appendStringInfoString(&buf, r->text);
					appendBinaryStringInfo(&buf, pt + suf, len - suf);
				}
				break;
			}
		case CV_MASK_EMAIL_DOMAIN:
			{
				int			at = -1,
							i;

				for (i = 0; i < len; i++)
					if (pt[i] == '@')
						at = i;
				appendStringInfoString(&buf, "***");
				if (at >= 0 && at < len - 1)
				{
					appendStringInfoChar(&buf, '@');
					appendBinaryStringInfo(&buf, pt + at + 1, len - at - 1);
				}
				break;
			}
		case CV_MASK_HASH:
			{
				char		hex[33];

				cv_mask_mac(st, "hash", pt, len, mac);
				hex_encode((const char *) mac, 16, hex);
				hex[32] = '\0';
				appendStringInfoString(&buf, hex);
				break;
			}
		case CV_MASK_FAKE:
			{
				const char *first,
						   *last;

				cv_mask_mac(st, cv_fake_kinds[r->param], pt, len, mac);
				first = cv_first_names[CV_MAC16(mac, 0) % CV_NELEM(cv_first_names)];
				last = cv_last_names[CV_MAC16(mac, 2) % CV_NELEM(cv_last_names)];
				switch (r->param)
				{
					case 0:
						appendStringInfoString(&buf, first);
						break;
					case 1:
						appendStringInfoString(&buf, last);
						break;
					case 2:
						appendStringInfo(&buf, "%s %s", first, last);
						break;
					case 3:
						cv_mask_append_lower(&buf, first);
						appendStringInfoChar(&buf, '.');
						cv_mask_append_lower(&buf, last);
						appendStringInfo(&buf, "%u@%s", CV_MAC16(mac, 4) % 100,
										 cv_email_domains[mac[6] % CV_NELEM(cv_email_domains)]);
						break;
					case 4:
						/* 555: no real numbers in North America */
						appendStringInfo(&buf, "+1 %03u 555 %04u", 200 + CV_MAC16(mac, 4) % 800,
										 CV_MAC16(mac, 6) % 10000);
						break;
					case 5:
						appendStringInfoString(&buf, cv_cities[CV_MAC16(mac, 4) % CV_NELEM(cv_cities)]);
						break;
					default:
						appendStringInfo(&buf, "%u %s %s, %s", 1 + CV_MAC16(mac, 4) % 250,
										 cv_streets[CV_MAC16(mac, 6) % CV_NELEM(cv_streets)],
										 cv_street_types[mac[8] % CV_NELEM(cv_street_types)],
										 cv_cities[CV_MAC16(mac, 9) % CV_NELEM(cv_cities)]);
						break;
				}
				cv_wipe(mac, sizeof(mac));
				break;
			}
		case CV_MASK_GEN_DATE:
			{
				int			i = 0,
							y,
							m,
							d;

				while (i < len && pt[i] == ' ')
					i++;
				/* YYYY-MM-DD, alone or followed by a time */
				if (len - i < 10 ||
					!isdigit((unsigned char) pt[i]) || !isdigit((unsigned char) pt[i + 1]) ||
					!isdigit((unsigned char) pt[i + 2]) || !isdigit((unsigned char) pt[i + 3]) ||
					pt[i + 4] != '-' || !isdigit((unsigned char) pt[i + 5]) ||
					!isdigit((unsigned char) pt[i + 6]) || pt[i + 7] != '-' ||
					!isdigit((unsigned char) pt[i + 8]) || !isdigit((unsigned char) pt[i + 9]) ||
					(len - i > 10 && isdigit((unsigned char) pt[i + 10])))
					return NULL;
				y = (pt[i] - '0') * 1000 + (pt[i + 1] - '0') * 100 + (pt[i + 2] - '0') * 10 + (pt[i + 3] - '0');
				m = (pt[i + 5] - '0') * 10 + (pt[i + 6] - '0');
				d = (pt[i + 8] - '0') * 10 + (pt[i + 9] - '0');
				if (y < 1 || m < 1 || m > 12 || d < 1 || d > 31)
					return NULL;
				switch (r->param)
				{
					case 0:
						appendStringInfo(&buf, "%04d-%02d-%02d", y, m, d);
						break;
					case 1:
						appendStringInfo(&buf, "%04d-%02d", y, m);
						break;
					case 2:
						appendStringInfo(&buf, "%04d", y);
						break;
					default:
						appendStringInfo(&buf, "%04ds", y - y % 10);
						break;
				}
				break;
			}
		case CV_MASK_GEN_NUMBER:
			{
				int			b = 0,
							e = len;
				char	   *num;
				Numeric		v,
							step,
							lo;

				while (b < e && pt[b] == ' ')
					b++;
				while (e > b && pt[e - 1] == ' ')
					e--;
				if (e - b > CV_MASK_NUMBER_MAX || !cv_mask_is_number(pt + b, e - b))
					return NULL;
				num = pnstrdup(pt + b, e - b);
				v = cv_mask_numeric(num);
				cv_wipe(num, e - b);
				step = cv_mask_numeric(r->text);
				/* lo = floor(v / step) * step */
				lo = DatumGetNumeric(DirectFunctionCall2(numeric_mul,
														 DirectFunctionCall2(numeric_div_trunc,
																			 NumericGetDatum(v),
																			 NumericGetDatum(step)),
														 NumericGetDatum(step)));
				if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(lo),
													  NumericGetDatum(v))) > 0)
					lo = DatumGetNumeric(DirectFunctionCall2(numeric_sub, NumericGetDatum(lo),
															 NumericGetDatum(step)));
				appendStringInfo(&buf, "[%s,%s)",
								 DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(lo))),
								 DatumGetCString(DirectFunctionCall1(numeric_out,
																	 DirectFunctionCall2(numeric_add,
																						 NumericGetDatum(lo),
																						 NumericGetDatum(step)))));
				break;
			}
	}
	return cstring_to_text_with_len(buf.data, buf.len);
}

/* ---------- resolving a column's rule ---------- */

/* a relation of the extension's schema, or an error */
static Oid
cv_mask_ext_relid(const char *name)
{
	Oid			nsp = get_namespace_oid(CV_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"customer_vault\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION customer_vault CASCADE.")));
	return relid;
}

/*
 * Read one text column of the row of an extension table whose relid and
 * column name columns match (NULL when there is none); the statement's
 * snapshot, no privilege check (the extension's own tables).
 */
static char *
cv_mask_registry(const char *table, const char *relcol, const char *namecol,
				 const char *valcol, Oid relid, const char *column)
{
	Oid			tab = cv_mask_ext_relid(table);
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey[2];
	HeapTuple	tup;
	Snapshot	snap;
	NameData	n;
	char	   *res = NULL;
	AttrNumber	a_rel,
				a_name,
				a_val;

	a_rel = get_attnum(tab, relcol);
	a_name = get_attnum(tab, namecol);
	a_val = get_attnum(tab, valcol);
	if (a_rel == InvalidAttrNumber || a_name == InvalidAttrNumber || a_val == InvalidAttrNumber)
		elog(ERROR, "customer_vault.%s lacks an expected column", table);
	namestrcpy(&n, column);
	snap = RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot());
	rel = table_open(tab, AccessShareLock);
	ScanKeyInit(&skey[0], a_rel, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&skey[1], a_name, BTEqualStrategyNumber, F_NAMEEQ, NameGetDatum(&n));
	scan = systable_beginscan(rel, InvalidOid, false, snap, 2, skey);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, a_val, RelationGetDescr(rel), &isnull);

		if (!isnull)
			res = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snap);
	return res;
}

/* a column's customer_vault label, its own or inherited by name from the nearest labelled ancestor (as _column_label) */
static char *
cv_mask_label(Oid relid, const char *column)
{
	ObjectAddress addr;
	char	   *label;
	List	   *ancestors;
	ListCell   *lc;

	addr.classId = RelationRelationId;
	addr.objectId = relid;
	addr.objectSubId = get_attnum(relid, column);
	label = GetSecurityLabel(&addr, "customer_vault");
	if (label != NULL || !get_rel_relispartition(relid))
		return label;
	ancestors = get_partition_ancestors(relid);
	foreach(lc, ancestors)
	{
		addr.objectId = lfirst_oid(lc);
		addr.objectSubId = get_attnum(addr.objectId, column);
		if (addr.objectSubId == InvalidAttrNumber)
			continue;
		if ((label = GetSecurityLabel(&addr, "customer_vault")) != NULL)
			break;
	}
	return label;
}

static Oid	cv_mask_extension_owner(void);

/* whether acl grants some right of mode to PUBLIC or to a role u1 or u2 is a member of (any chain) */
static bool
cv_mask_acl_reaches(Acl *acl, AclMode mode, Oid u1, Oid u2)
{
	AclItem    *items = ACL_DAT(acl);
	int			n = ACL_NUM(acl);

	for (int i = 0; i < n; i++)
	{
		Oid			g = items[i].ai_grantee;

		if ((ACLITEM_GET_PRIVS(items[i]) & mode) == 0)
			continue;
		if (g == ACL_ID_PUBLIC || is_member_of_role(u1, g) || is_member_of_role(u2, g))
			return true;
	}
	return false;
}

/* whether u1 or u2 can become a role holding INSERT or UPDATE on relation r or a column of it */
static bool
cv_mask_rel_reaches(Oid r, Oid u1, Oid u2)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(r));
	Form_pg_class form;
	Oid			owner;
	Datum		d;
	bool		isnull;
	bool		found;
	int			natts;

	if (!HeapTupleIsValid(tup))
		return false;			/* dropped meanwhile */
	form = (Form_pg_class) GETSTRUCT(tup);
	owner = form->relowner;
	natts = form->relnatts;
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relacl, &isnull);
	/* the owner may grant itself any right */
	found = is_member_of_role(u1, owner) || is_member_of_role(u2, owner) ||
		cv_mask_acl_reaches(isnull ? acldefault(OBJECT_TABLE, owner) : DatumGetAclP(d),
							ACL_INSERT | ACL_UPDATE, u1, u2);
	ReleaseSysCache(tup);
	for (AttrNumber a = 1; !found && a <= natts; a++)
	{
		tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(r), Int16GetDatum(a));
		if (!HeapTupleIsValid(tup))
			continue;
		d = SysCacheGetAttr(ATTNUM, tup, Anum_pg_attribute_attacl, &isnull);
		if (!isnull && !((Form_pg_attribute) GETSTRUCT(tup))->attisdropped)
			found = cv_mask_acl_reaches(DatumGetAclP(d), ACL_INSERT | ACL_UPDATE, u1, u2);
		ReleaseSysCache(tup);
	}
	return found;
}

/* whether u1 or u2 can become a role that may execute customer_vault.name(args) */
static bool
cv_mask_fn_reaches(const char *name, int nargs, const Oid *argtypes, Oid u1, Oid u2)
{
	Oid			fn = LookupFuncName(list_make2(makeString(CV_SCHEMA), makeString(pstrdup(name))),
									nargs, argtypes, true);
	HeapTuple	tup;
	Oid			owner;
	Datum		d;
	bool		isnull;
	bool		found;

	if (!OidIsValid(fn) || !HeapTupleIsValid(tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn))))
		return false;
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_proacl, &isnull);
	found = is_member_of_role(u1, owner) || is_member_of_role(u2, owner) ||
		cv_mask_acl_reaches(isnull ? acldefault(OBJECT_FUNCTION, owner) : DatumGetAclP(d),
							ACL_EXECUTE, u1, u2);
	ReleaseSysCache(tup);
	return found;
}

/*
 * Whether the session could make a chosen plaintext a value of a column of
 * relid, and then read its keyed mask: the current user, or any role the
 * session user can become (SET ROLE, through NOINHERIT chains too), can
 * write (INSERT or UPDATE) the table or any partition or child of it at any level, or seal a
 * value under a chosen context (encrypt, encrypt_for_subject, _seal_column).
 * Rights that reach the table by other ways (views, rules, INSTEAD OF
 * triggers, SECURITY DEFINER functions) are not seen: see docs/API.md.
 */
static bool
cv_mask_can_plant(Oid relid)
{
	Oid			u1 = GetUserId();
	Oid			u2 = GetSessionUserId();
	Oid			t3[3] = {TEXTOID, TEXTOID, TEXTOID};
	Oid			b3[3] = {BYTEAOID, TEXTOID, TEXTOID};
	List	   *rels;
	ListCell   *lc;

	/*
	 * A superuser session may decrypt anything anyway: only the role it has
	 * become counts (a superuser current user may write, so it gets none).
	 */
	if (superuser_arg(u2))
		u2 = u1;
	rels = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, rels)
	{
		if (cv_mask_rel_reaches(lfirst_oid(lc), u1, u2))
			return true;
	}
	return cv_mask_fn_reaches("encrypt", 3, t3, u1, u2) ||
		cv_mask_fn_reaches("encrypt", 3, b3, u1, u2) ||
		cv_mask_fn_reaches("encrypt_for_subject", 3, t3, u1, u2) ||
		cv_mask_fn_reaches("_seal_column", 3, t3, u1, u2);
}

/*
 * Whether the table's owner could run code of its own as a masked reader
 * while the view is read, and so compute keyed masks of its own guesses
 * (it can always plant them): the table has a row-level security policy
 * (its expression runs as the caller) and its owner is neither a superuser,
 * the extension's owner nor a member of customer_vault_admin.
 */
static bool
cv_mask_owner_may_spy(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;
	Oid			admin = get_role_oid("customer_vault_admin", true);
	Relation	pol;
	SysScanDesc scan;
	ScanKeyData skey;
	bool		found;

	if (!HeapTupleIsValid(tup))
		return true;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	if (superuser_arg(owner) || owner == cv_mask_extension_owner() ||
		(OidIsValid(admin) && has_privs_of_role(owner, admin)))
		return false;
	pol = table_open(PolicyRelationId, AccessShareLock);
	ScanKeyInit(&skey, Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(pol, PolicyPolrelidPolnameIndexId, true, NULL, 1, &skey);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(pol, AccessShareLock);
	return found;
}

/*
 * Resolve what a call masks: the column (by table and name), the caller's
 * right to read it, its rule (mask_rules, else its label's default, else
 * withheld), its binding, and the key of a keyed rule.  Kept in fn_extra
 * while the statement, the caller and the arguments stay the same.
 */
static CvMaskState *
cv_mask_state(FunctionCallInfo fcinfo, Oid relid, Name column, bool sealed)
{
	CvMaskState *st = (CvMaskState *) fcinfo->flinfo->fn_extra;
	uint64		epoch = CvKeyEpoch();
	AttrNumber	attnum;
	char	   *rule;
	char	   *binding;
	char	   *nsp;
	char	   *relname;

	if (st != NULL && st->valid && st->epoch == epoch && st->relid == relid &&
		st->userid == GetUserId() &&
		strcmp(NameStr(st->column), NameStr(*column)) == 0)
		return st;
	if (st == NULL)
	{
		st = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CvMaskState));
		fcinfo->flinfo->fn_extra = st;
	}
	st->valid = false;

	relname = get_rel_name(relid);
	attnum = relname ? get_attnum(relid, NameStr(*column)) : InvalidAttrNumber;
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation with OID %u does not exist", NameStr(*column), relid)));
	/* the masked reader's scope: SELECT on some column of the table */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", relname),
				 errdetail("Masked values are computed only for tables of which the caller may select some column.")));
	if (get_rel_relispartition(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table %s is a partition", relname),
				 errhint("Masks are computed through its partitioned table.")));

	binding = cv_mask_registry("protected_columns", "relid", "column_name", "binding",
							   relid, NameStr(*column));
	if (sealed && binding == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("column \"%s\" of table %s is not protected", NameStr(*column), relname)));
	if (!sealed && binding != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("column \"%s\" of table %s is protected", NameStr(*column), relname),
				 errhint("Its values are masked from their ciphertext, by customer_vault._mask_sealed().")));
	if (binding == NULL)
	{
		/* the binding a plaintext column would have: its qualified name now */
		char	   *q;

		nsp = get_namespace_name(get_rel_namespace(relid));
		q = psprintf("%s.%s.%s", quote_identifier(nsp), quote_identifier(relname),
					 quote_identifier(NameStr(*column)));
		binding = psprintf("%d:%s", (int) strlen(q), q);
	}
	if (strlen(binding) >= sizeof(st->binding))
		elog(ERROR, "binding of column \"%s\" is too long", NameStr(*column));
	strlcpy(st->binding, binding, sizeof(st->binding));
	st->bindlen = strlen(binding);

	rule = cv_mask_registry("mask_rules", "relid", "column_name", "rule", relid, NameStr(*column));
	if (rule == NULL || strcmp(rule, "default") == 0)
		rule = (char *) cv_mask_default_rule(cv_mask_label(relid, NameStr(*column)));
	cv_mask_parse(rule, &st->rule, false, NULL);
	st->key = NULL;
	st->withhold = false;
	if ((st->rule.kind == CV_MASK_HASH || st->rule.kind == CV_MASK_FAKE) &&
		(!sealed || cv_mask_can_plant(relid) || cv_mask_owner_may_spy(relid)))
		st->withhold = true;	/* no dictionary of guesses */
	else if (st->rule.kind == CV_MASK_HASH || st->rule.kind == CV_MASK_FAKE)
	{
		if (st->rule.key[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the masking rule of column \"%s\" of table %s names no key", NameStr(*column), relname),
					 errhint("Set it again with customer_vault.mask_column().")));
		/* the first version: masks stay the same across rotations */
		st->key = CvBlindIndexKeyByName(st->rule.key);
		if (st->key->mask == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("key \"%s\" cannot compute masks", st->rule.key)));
	}
	st->relid = relid;
	st->userid = GetUserId();
	namestrcpy(&st->column, NameStr(*column));
	st->sealed = sealed;
	st->epoch = CvKeyEpoch();
	st->valid = true;
	return st;
}

/*
 * _mask_sealed(value, context, tbl, col): the mask of a protected column's
 * value (its ciphertext text form) under the column's own rule.  The
 * context must be the column's binding followed by the row's context; the
 * plaintext never leaves this function.  NULL for NULL, for a shredded key,
 * and when the rule withholds the value.
 */
Datum
cv_mask_sealed(PG_FUNCTION_ARGS)
{
	text	   *t;
	text	   *ctx;
	CvMaskState *st;
	CvEnvelope	env;
	char	   *pt;
	size_t		ptlen;
	int			rc;
	text	   *res;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and column must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the context of a protected value must not be null")));
	st = cv_mask_state(fcinfo, PG_GETARG_OID(2), PG_GETARG_NAME(3), true);
	t = PG_GETARG_TEXT_PP(0);
	ctx = PG_GETARG_TEXT_PP(1);
	if (VARSIZE_ANY_EXHDR(ctx) < st->bindlen ||
		memcmp(VARDATA_ANY(ctx), st->binding, st->bindlen) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the context does not belong to column \"%s\"", NameStr(st->column)),
				 errdetail("A masked value is computed only from a value of the column it was sealed for.")));
	if (CvTextToEnvelope(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &env) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("protected column holds a value that is not a ciphertext envelope")));
	if (st->rule.kind == CV_MASK_NULL || st->withhold)
		PG_RETURN_NULL();		/* withheld: nothing to open */
	pt = palloc(env.ciphertext_len + 1);
	rc = CvOpenEnvelope(&env, VARDATA_ANY(ctx), VARSIZE_ANY_EXHDR(ctx), CV_OPEN_MASK, false,
						pt, &ptlen);
	if (rc == CV_OPEN_FAILED)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt value: authentication failed"),
				 errdetail("The value was altered, moved to another column or row, or the context does not match the one it was encrypted with.")));
	if (rc != CV_OPEN_OK)
		PG_RETURN_NULL();		/* its key was shredded */
	res = cv_mask_apply(st, pt, (int) ptlen);
	cv_wipe(pt, env.ciphertext_len + 1);
	pfree(pt);
	if (res == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(res);
}

/*
 * _mask_plain(value, tbl, col): the mask of a value of a labelled (or
 * ruled) column that is not encrypted, under the column's own rule.
 */
Datum
cv_mask_plain(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	CvMaskState *st = cv_mask_state(fcinfo, PG_GETARG_OID(1), PG_GETARG_NAME(2), false);
	text	   *res = st->withhold ? NULL : cv_mask_apply(st, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));

	if (res == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(res);
}

/*
 * _mask_rule(rule, default_key): the canonical text of a rule, with the
 * default key filled in for hash and fake ('default': the label's default,
 * resolved when masking).  Checks that a named key exists.
 */
Datum
cv_mask_rule(PG_FUNCTION_ARGS)
{
	CvMaskRule	r;
	bool		is_default;
	char	   *s;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("masking rule must not be null"),
				 errhint("Use 'default' to go back to the default of the column's label, 'null' to withhold it.")));
	s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	cv_mask_parse(s, &r, true, &is_default);
	if (is_default)
		PG_RETURN_TEXT_P(cstring_to_text("default"));
	if ((r.kind == CV_MASK_HASH || r.kind == CV_MASK_FAKE) && PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("masking rule %s is for protected columns only",
						r.kind == CV_MASK_HASH ? "hash" : "fake"),
				 errdetail("Whoever may call the masking function could hash guesses of a column that is not encrypted."),
				 errhint("Protect the column first with customer_vault.protect_column().")));
	if ((r.kind == CV_MASK_HASH || r.kind == CV_MASK_FAKE) && r.key[0] == '\0')
		strlcpy(r.key, text_to_cstring(PG_GETARG_TEXT_PP(1)), NAMEDATALEN);
	if (r.key[0] != '\0')
		(void) CvBlindIndexKeyByName(r.key);	/* errors when it does not exist */
	PG_RETURN_TEXT_P(cstring_to_text(cv_mask_format(&r)));
}

/* ---------- acting as the extension's owner ---------- */

/* the extension's owner: the owner of its registry table */
static Oid
cv_mask_extension_owner(void)
{
	Oid			relid = cv_mask_ext_relid("protected_columns");
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Run one "SELECT fn(...)" through SPI with the masked-view flag set, as
 * the given role (InvalidOid: the current one) inside a security-restricted
 * operation; the text of the first column of its row, or NULL.
 */
static char *
cv_mask_run(Oid role, const char *sql, int nargs, Oid *types, Datum *args, const char *nulls)
{
	Oid			save_uid;
	int			save_sec;
	bool		save_active = cv_mask_view_active;
	MemoryContext outer = CurrentMemoryContext;
	char	   *volatile res = NULL;

	GetUserIdAndSecContext(&save_uid, &save_sec);
	if (OidIsValid(role))
		SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	cv_mask_view_active = true;
	PG_TRY();
	{
		if (SPI_execute_with_args(sql, nargs, types, args, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not run %s", sql);
		if (SPI_processed == 1)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (v != NULL)
				res = MemoryContextStrdup(outer, v);
		}
	}
	PG_FINALLY();
	{
		cv_mask_view_active = save_active;
	}
	PG_END_TRY();
	SPI_finish();
	SetUserIdAndSecContext(save_uid, save_sec);
	return res;
}

/* _mask_view_active(): whether the extension itself is (re)defining a masked view */
Datum
cv_mask_view_is_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cv_mask_view_active);
}

/*
 * _masked_view_build(tbl): (re)creates <table>_masked; for the extension's
 * owner only (its event trigger and protect_column's completion call it).
 */
Datum
cv_mask_build_view(PG_FUNCTION_ARGS)
{
	Oid			types[1] = {REGCLASSOID};
	Datum		args[1];

	if (!has_privs_of_role(GetUserId(), cv_mask_extension_owner()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the extension's owner may build a masked view")));
	args[0] = PG_GETARG_DATUM(0);
	(void) cv_mask_run(InvalidOid, "SELECT customer_vault._build_masked_view($1)", 1, types, args, NULL);
	PG_RETURN_VOID();
}

/*
 * _mask_column_set(tbl, col, rule): for the table's owner, records the rule
 * and rebuilds <table>_masked as the extension's owner; the canonical rule
 * stored.
 */
Datum
cv_mask_column_set(PG_FUNCTION_ARGS)
{
	Oid			types[4] = {REGCLASSOID, NAMEOID, TEXTOID, OIDOID};
	Datum		args[4];
	HeapTuple	tup;
	Oid			relid;
	Oid			owner;
	char	   *res;

	/* the registry and the keys are changed through the coordinator only */
	CvRefuseOnCitusWorker("mask_column()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and column must not be null")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("masking rule must not be null"),
				 errhint("Use 'default' to go back to the default of the column's label, 'null' to withhold it.")));
	relid = PG_GETARG_OID(0);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", get_rel_name(relid))));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	args[2] = PG_GETARG_DATUM(2);
	args[3] = ObjectIdGetDatum(GetUserId());
	res = cv_mask_run(cv_mask_extension_owner(),
					  "SELECT customer_vault._mask_column_as_owner($1, $2, $3, $4)",
					  4, types, args, NULL);
	if (res == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(res));
}

/*
 * _mask_label_rule(label): the rule a column with this customer_vault label
 * (NULL: none) gets by default; mask_column and the view build pin it.
 */
Datum
cv_mask_label_rule(PG_FUNCTION_ARGS)
{
	const char *rule = cv_mask_default_rule(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)));

	PG_RETURN_TEXT_P(cstring_to_text(rule));
}
