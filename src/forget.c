/*-------------------------------------------------------------------------
 * forget.c
 *		The walk of forget_subject (erasure, GDPR art. 17): every table of
 *		the subject reach, changed as its owner inside a security-restricted
 *		operation, with statements prepared once per session.
 *
 *		The statements come from customer_vault._erasure_plan() (extension
 *		code reading the catalog and the registry: quoted identifiers, never
 *		anything a caller passes).  They are prepared and kept (SPI_keepplan)
 *		until a relcache invalidation names one of the tables, the subject
 *		registry or the retention policies (statement triggers on those two
 *		send one), or the PII labels of a table the erasure anonymizes
 *		change; then the next erasure builds them again.
 *
 *		One erasure: the keys each table's rows give its children are read
 *		parents first (the subject's own column at depth 0, the keys read
 *		from the parents below), each as that table's owner, so no owner
 *		reads another owner's table; the kept tables a foreign key would
 *		cascade a deletion into are checked; the calling role's privilege on
 *		every table is checked; then each table is changed (deleted,
 *		anonymized or counted, as its retention action says), children
 *		first.  The counts per table come back as a JSON object.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

/* one table of the erasure plan */
typedef struct FgTable
{
	Oid			relid;
	int			depth;
	char		treat;			/* 'd'elete, 'a'nonymize, 'k'eep */
	int			change_pos;
	Oid			subject_type;	/* depth 0 */
	SPIPlanPtr	keys_plan;		/* NULL: no child needs keys */
	int			nparams;
	int		   *src_pos;		/* per parameter: key position of the parent */
	int		   *src_col;		/* per parameter: column of the parent's keys */
	SPIPlanPtr	act_plan;		/* NULL: anonymize without PII columns */
	SPIPlanPtr	count_plan;		/* prepared when first needed */
	char	   *count_sql;
	Oid		   *types;
	int			ndanger;
	char	  **danger;			/* conname, parent, confdeltype triples */
	char	   *pii;			/* anonymize: the columns cleared, as built */
} FgTable;

static MemoryContext fg_cxt = NULL;
static FgTable *fg_tables = NULL;
static int	fg_n = 0;
static int *fg_change_order = NULL;
static bool fg_valid = false;
static uint64 fg_gen = 0;
static Oid	fg_registry[2] = {InvalidOid, InvalidOid};
static bool fg_busy = false;

/* labelled tables no registered table reaches: their OIDs and names */
static int	fg_nunreached = 0;
static Oid *fg_unreached_oids = NULL;
static char **fg_unreached_names = NULL;

PG_FUNCTION_INFO_V1(cv_forget_walk);
PG_FUNCTION_INFO_V1(cv_erasure_invalidate);

/* a relcache invalidation of a planned table or of the registry: build again */
static void
fg_relcache_callback(Datum arg, Oid relid)
{
	int			i;

	if (!fg_valid)
		return;
	if (!OidIsValid(relid) || relid == fg_registry[0] || relid == fg_registry[1])
	{
		fg_valid = false;
		fg_gen++;
		return;
	}
	for (i = 0; i < fg_n; i++)
		if (fg_tables[i].relid == relid)
		{
			fg_valid = false;
			fg_gen++;
			return;
		}
	for (i = 0; i < fg_nunreached; i++)
		if (fg_unreached_oids[i] == relid)
		{
			fg_valid = false;
			fg_gen++;
			return;
		}
}

/*
 * A customer_vault label was set or removed (labels.c): every session builds
 * its erasure plan again (which columns an anonymization clears, which
 * labelled tables no registered table reaches).  Sent as an invalidation of
 * the subject registry, which every plan watches.
 */
void
CvErasureLabelsChanged(void)
{
	Oid			nsp = get_namespace_oid(CV_SCHEMA, true);
	Oid			reg = OidIsValid(nsp) ? get_relname_relid("subject_tables", nsp) : InvalidOid;

	if (OidIsValid(reg))
		CacheInvalidateRelcacheByRelid(reg);
}

/* register the invalidation callback; called from _PG_init */
void
ForgetInit(void)
{
	CacheRegisterRelcacheCallback(fg_relcache_callback, (Datum) 0);
}

/* statement trigger on subject_tables and retention_policies: every backend builds its erasure plan again */
Datum
cv_erasure_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/* forget every kept plan */
static void
fg_free(void)
{
	int			i;

	for (i = 0; i < fg_n; i++)
	{
		if (fg_tables[i].keys_plan)
			SPI_freeplan(fg_tables[i].keys_plan);
		if (fg_tables[i].act_plan)
			SPI_freeplan(fg_tables[i].act_plan);
		if (fg_tables[i].count_plan)
			SPI_freeplan(fg_tables[i].count_plan);
	}
	fg_n = 0;
	fg_tables = NULL;
	fg_change_order = NULL;
	fg_nunreached = 0;
	fg_unreached_oids = NULL;
	fg_unreached_names = NULL;
	if (fg_cxt != NULL)
		MemoryContextReset(fg_cxt);
}

/* prepare and keep one statement of the plan */
static SPIPlanPtr
fg_prepare(const char *sql, int nparams, Oid *types)
{
	SPIPlanPtr	p = SPI_prepare(sql, nparams, types);

	if (p == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(p) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return p;
}

/* a text column of a plan row, copied into fg_cxt (NULL stays NULL) */
static char *
fg_text(HeapTuple tup, TupleDesc desc, int col)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? MemoryContextStrdup(fg_cxt, v) : NULL;
}

/* an int4 column of a plan row */
static int
fg_int(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/* build the plan of an erasure from customer_vault._erasure_plan() (inside SPI) */
static void
fg_build(void)
{
	uint64		gen = fg_gen;
	Oid			nsp;
	SPITupleTable *tt;
	uint64		i;
	int			rc;

	fg_valid = false;
	fg_free();
	if (fg_cxt == NULL)
		fg_cxt = AllocSetContextCreate(TopMemoryContext, "customer_vault erasure plan",
									   ALLOCSET_SMALL_SIZES);
	nsp = get_namespace_oid(CV_SCHEMA, false);
	fg_registry[0] = get_relname_relid("subject_tables", nsp);
	fg_registry[1] = get_relname_relid("retention_policies", nsp);

	rc = SPI_execute("SELECT relid, depth, treatment, key_pos, change_pos, subject_type, keys_sql, param_src,"
					 " act_sql, count_sql, danger, pii FROM customer_vault._erasure_plan() ORDER BY key_pos",
					 false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "customer_vault._erasure_plan did not answer");
	tt = SPI_tuptable;
	fg_tables = MemoryContextAllocZero(fg_cxt, sizeof(FgTable) * Max(SPI_processed, 1));
	fg_change_order = MemoryContextAllocZero(fg_cxt, sizeof(int) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = tt->vals[i];
		TupleDesc	desc = tt->tupdesc;
		FgTable    *t = &fg_tables[i];
		bool		isnull;
		char	   *treat;
		char	   *keys_sql;
		char	   *act_sql;
		char	   *count_sql;
		Datum		d;
		Oid		   *types;
		int			p;

		fg_n = (int) i + 1;
		t->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		t->depth = fg_int(tup, desc, 2);
		treat = SPI_getvalue(tup, desc, 3);
		t->treat = (treat && strcmp(treat, "anonymize") == 0) ? 'a' :
			(treat && strcmp(treat, "keep") == 0) ? 'k' : 'd';
		if (fg_int(tup, desc, 4) != (int) i)
			elog(ERROR, "customer_vault._erasure_plan gave the tables out of order");
		t->change_pos = fg_int(tup, desc, 5);
		if (t->change_pos < 0 || t->change_pos >= (int) SPI_processed)
			elog(ERROR, "customer_vault._erasure_plan gave a bad order of change");
		fg_change_order[t->change_pos] = (int) i;
		d = SPI_getbinval(tup, desc, 6, &isnull);
		t->subject_type = isnull ? InvalidOid : DatumGetObjectId(d);
		keys_sql = SPI_getvalue(tup, desc, 7);
		d = SPI_getbinval(tup, desc, 8, &isnull);
		if (!isnull)
		{
			ArrayType  *a = DatumGetArrayTypeP(d);
			Datum	   *el;
			bool	   *nl;
			int			ne;

			deconstruct_array(a, INT4OID, 4, true, TYPALIGN_INT, &el, &nl, &ne);
			t->nparams = ne / 2;
			t->src_pos = MemoryContextAllocZero(fg_cxt, sizeof(int) * Max(t->nparams, 1));
			t->src_col = MemoryContextAllocZero(fg_cxt, sizeof(int) * Max(t->nparams, 1));
			for (p = 0; p < t->nparams; p++)
			{
				t->src_pos[p] = DatumGetInt32(el[2 * p]);
				t->src_col[p] = DatumGetInt32(el[2 * p + 1]);
				if (t->src_pos[p] < 0 || t->src_pos[p] >= (int) i || t->src_col[p] < 1)
					elog(ERROR, "customer_vault._erasure_plan gave a bad parameter source");
			}
		}
		if (t->depth == 0)
			t->nparams = 1;
		types = palloc(sizeof(Oid) * Max(t->nparams, 1));
		for (p = 0; p < t->nparams; p++)
			types[p] = (t->depth == 0) ? TEXTOID : TEXTARRAYOID;
		act_sql = SPI_getvalue(tup, desc, 9);
		count_sql = SPI_getvalue(tup, desc, 10);
		d = SPI_getbinval(tup, desc, 11, &isnull);
		if (!isnull)
		{
			Datum	   *el;
			bool	   *nl;
			int			ne;
			int			k;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &el, &nl, &ne);
			t->ndanger = ne / 3;
			t->danger = MemoryContextAllocZero(fg_cxt, sizeof(char *) * Max(ne, 1));
			for (k = 0; k < t->ndanger * 3; k++)
				t->danger[k] = nl[k] ? "" : MemoryContextStrdup(fg_cxt, TextDatumGetCString(el[k]));
		}
		t->pii = fg_text(tup, desc, 12);
		/* the statements (after the fields above, so fg_free finds what was kept) */
		if (keys_sql != NULL)
			t->keys_plan = fg_prepare(keys_sql, t->nparams, types);
		if (act_sql != NULL)
			t->act_plan = fg_prepare(act_sql, t->nparams, types);
		t->count_sql = count_sql ? MemoryContextStrdup(fg_cxt, count_sql) : NULL;
		t->types = MemoryContextAlloc(fg_cxt, sizeof(Oid) * Max(t->nparams, 1));
		memcpy(t->types, types, sizeof(Oid) * Max(t->nparams, 1));
		if (t->ndanger > 0 && count_sql != NULL)
			t->count_plan = fg_prepare(count_sql, t->nparams, types);
	}

	/* labelled tables the reach misses (named in every receipt) */
	rc = SPI_execute("SELECT DISTINCT c.oid, pg_catalog.format('%s', c.oid::pg_catalog.regclass)"
					 " FROM pg_catalog.pg_seclabel l JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) l.objoid"
					 " WHERE l.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
					 " AND l.provider OPERATOR(pg_catalog.=) 'customer_vault' AND l.objsubid OPERATOR(pg_catalog.>) 0"
					 " AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 2",
					 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the customer_vault labels");
	tt = SPI_tuptable;
	fg_unreached_oids = MemoryContextAllocZero(fg_cxt, sizeof(Oid) * Max(SPI_processed, 1));
	fg_unreached_names = MemoryContextAllocZero(fg_cxt, sizeof(char *) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		int			k;
		bool		reached = false;

		for (k = 0; k < fg_n; k++)
			if (fg_tables[k].relid == relid)
				reached = true;
		if (reached)
			continue;
		fg_unreached_oids[fg_nunreached] = relid;
		fg_unreached_names[fg_nunreached] = fg_text(tt->vals[i], tt->tupdesc, 2);
		fg_nunreached++;
	}
	fg_valid = (gen == fg_gen);
}

/*
 * Whether the subject is a value of an allowed subject type (its input
 * function: built-in types only, no user code); *canon: the value's text
 * form in that type (what may_process((column)::type) compares), NULL for
 * the text types.
 */
static bool
fg_casts_to(const char *subject, Oid typ, char **canon)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Oid			typinput;
	Oid			typioparam;
	volatile bool ok = true;
	const char *c;

	*canon = NULL;
	if (typ == TEXTOID || typ == VARCHAROID || typ == BPCHAROID)
		return true;
	getTypeInputInfo(typ, &typinput, &typioparam);
	/* the common case without a subtransaction: a plain decimal integer */
	if (typ == INT8OID || typ == NUMERICOID)
	{
		for (c = subject; *c >= '0' && *c <= '9'; c++)
			;
		if (*c == '\0' && c > subject && c - subject <= 18)
			goto valid;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		(void) OidInputFunctionCall(typinput, (char *) subject, typioparam, -1);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
		return false;
valid:
	{
		Oid			typoutput;
		bool		isvarlena;

		getTypeOutputInfo(typ, &typoutput, &isvarlena);
		*canon = OidOutputFunctionCall(typoutput,
									   OidInputFunctionCall(typinput, (char *) subject, typioparam, -1));
	}
	return true;
}

/* add a spelling of the subject to the JSON array being built, once */
static void
fg_add_spelling(StringInfo buf, List **seen, const char *s)
{
	ListCell   *lc;

	foreach(lc, *seen)
		if (strcmp((const char *) lfirst(lc), s) == 0)
			return;
	*seen = lappend(*seen, pstrdup(s));
	if (list_length(*seen) > 1)
		appendStringInfoString(buf, ", ");
	escape_json(buf, s);
}

/*
 * The spellings under which consents of this subject may be stored: the
 * subject as given; its text form in each registered subject column's type
 * (what the consent check compares for the rows of that column: '42' for
 * '042' in a bigint column); that form zero-padded (integers, up to 20
 * characters); for uuid, upper case, without hyphens and in braces.
 */
static void
fg_spellings(StringInfo buf, List **seen, const char *subject, Oid typ, const char *canon)
{
	fg_add_spelling(buf, seen, subject);
	if (canon == NULL)
		return;
	fg_add_spelling(buf, seen, canon);
	if ((typ == INT2OID || typ == INT4OID || typ == INT8OID ||
		 (typ == NUMERICOID && strchr(canon, '.') == NULL)) && canon[0] != '-')
	{
		int			clen = strlen(canon);
		int			len;

		for (len = clen + 1; len <= 20; len++)
		{
			char	   *p = palloc(len + 1);

			memset(p, '0', len - clen);
			strcpy(p + len - clen, canon);
			fg_add_spelling(buf, seen, p);
		}
	}
	else if (typ == UUIDOID)
	{
		char	   *up = pstrdup(canon);
		char	   *bare = palloc(strlen(canon) + 1);
		char	   *b = bare;
		const char *c;
		char	   *u;

		for (u = up; *u; u++)
			*u = pg_toupper((unsigned char) *u);
		for (c = canon; *c; c++)
			if (*c != '-')
				*b++ = *c;
		*b = '\0';
		fg_add_spelling(buf, seen, up);
		fg_add_spelling(buf, seen, bare);
		fg_add_spelling(buf, seen, psprintf("{%s}", canon));
		for (u = bare; *u; u++)
			*u = pg_toupper((unsigned char) *u);
		fg_add_spelling(buf, seen, bare);
		fg_add_spelling(buf, seen, psprintf("{%s}", up));
	}
}

/*
 * Run one prepared statement of table t as the table's owner, inside a
 * security-restricted operation, in a GUC nest level of its own with a
 * pinned search_path and row security off (as maint.c runs maintenance).
 */
static int
fg_exec(FgTable *t, SPIPlanPtr plan, Datum *values, const char *nulls)
{
	HeapTuple	ctup;
	Oid			owner;
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	int			rc;

	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(t->relid));
	if (!HeapTupleIsValid(ctup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", t->relid)));
	owner = ((Form_pg_class) GETSTRUCT(ctup))->relowner;
	ReleaseSysCache(ctup);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("row_security", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	rc = SPI_execute_plan(plan, values, nulls, false, 0);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec);
	if (rc < 0)
		elog(ERROR, "erasure statement failed: %s", SPI_result_code_string(rc));
	return rc;
}

/* the bigint the first column of the last statement's only row holds */
static int64
fg_count(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed != 1)
		elog(ERROR, "erasure count gave no row");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/* the count statement of a table (built with the plan) */
static const char *
fg_count_sql(FgTable *t)
{
	if (t->count_sql == NULL)
		elog(ERROR, "customer_vault._erasure_plan gave no count statement");
	return t->count_sql;
}

/* the parameter types of a table's statements */
static Oid *
fg_param_types(FgTable *t)
{
	return t->types;
}

/* the error for a kept table a foreign key ties to deleted rows */
static void
fg_refuse_cascade(FgTable *t)
{
	char	   *child = DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(t->relid)));

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("table %s keeps the subject's rows, but its foreign key %s ties them to rows of %s that are deleted",
					child, quote_identifier(t->danger[0]), t->danger[1]),
			 errdetail(t->danger[2][0] == 'c' ? "ON DELETE CASCADE would delete the kept rows." :
					   "The foreign key forbids deleting the referenced rows."),
			 errhint("Nothing was erased. Give %s the anonymize retention action too, or declare the foreign key ON DELETE SET NULL.",
					 t->danger[1])));
}

/*
 * customer_vault._forget_walk(subject text, caller oid) RETURNS text: the
 * erasure of one subject in every table of the reach; the counts per table
 * as a JSON object {"schema.table": {"deleted", "anonymized", "kept"}}.
 * Called by forget_subject only (executable by nobody else), which checks
 * the subject and the holds, shreds, withdraws and writes the receipt.
 */
Datum
cv_forget_walk(PG_FUNCTION_ARGS)
{
	char	   *subject;
	Oid			caller;
	Datum		subject_datum;
	Datum	  **keys;
	bool	  **keynull;
	bool	   *empty;
	Datum	  **tparams;
	char	  **tnulls;
	int64	   *counts;
	StringInfoData out;
	StringInfoData spell;
	List	   *seen = NIL;
	text	   *result;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subject and caller must not be null")));
	if (fg_busy)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("an erasure cannot start inside another erasure")));
	subject_datum = PG_GETARG_DATUM(0);
	subject = TextDatumGetCString(subject_datum);
	caller = PG_GETARG_OID(1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	fg_busy = true;
	PG_TRY();
	{
		/* the plan, built again when the catalog, the registry or the labels changed */
		if (!fg_valid)
			fg_build();

		keys = palloc0(sizeof(Datum *) * Max(fg_n, 1));
		keynull = palloc0(sizeof(bool *) * Max(fg_n, 1));
		empty = palloc0(sizeof(bool) * Max(fg_n, 1));
		counts = palloc0(sizeof(int64) * Max(fg_n, 1));
		tparams = palloc0(sizeof(Datum *) * Max(fg_n, 1));
		tnulls = palloc0(sizeof(char *) * Max(fg_n, 1));
		initStringInfo(&spell);
		fg_add_spelling(&spell, &seen, subject);

		/* an anonymized table needs PII columns to clear */
		for (i = 0; i < fg_n; i++)
			if (fg_tables[i].treat == 'a' && fg_tables[i].act_plan == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("table %s has no PII-labelled columns to anonymize",
								DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(fg_tables[i].relid)))),
						 errhint("Label them first: SECURITY LABEL FOR customer_vault ON COLUMN t.c IS 'pii'.")));

		/* the keys, parents first, each table read as its owner */
		for (i = 0; i < fg_n; i++)
		{
			FgTable    *t = &fg_tables[i];
			int			np = Max(t->nparams, 1);
			Datum	   *params = palloc0(sizeof(Datum) * np);
			char	   *pnulls = palloc(np + 1);
			int			p;

			memset(pnulls, 'n', np);
			pnulls[np] = '\0';
			tparams[i] = params;
			tnulls[i] = pnulls;
			if (t->depth == 0)
			{
				char	   *canon;

				empty[i] = !fg_casts_to(subject, t->subject_type, &canon);
				if (!empty[i])
					fg_spellings(&spell, &seen, subject, t->subject_type, canon);
				params[0] = subject_datum;
				pnulls[0] = ' ';
			}
			else
			{
				empty[i] = true;
				for (p = 0; p < t->nparams; p++)
				{
					int			src = t->src_pos[p];
					int			col = t->src_col[p] - 1;

					if (!empty[src] && keys[src] != NULL && !keynull[src][col])
					{
						params[p] = keys[src][col];
						pnulls[p] = ' ';
						empty[i] = false;
					}
				}
			}
			if (!empty[i] && t->keys_plan != NULL)
			{
				TupleDesc	desc;
				int			n;
				int			c;

				fg_exec(t, t->keys_plan, params, pnulls);
				if (SPI_processed != 1)
					elog(ERROR, "erasure keys gave no row");
				desc = SPI_tuptable->tupdesc;
				n = desc->natts;
				keys[i] = palloc0(sizeof(Datum) * n);
				keynull[i] = palloc0(sizeof(bool) * n);
				for (c = 0; c < n; c++)
				{
					Datum		d = SPI_getbinval(SPI_tuptable->vals[0], desc, c + 1, &keynull[i][c]);

					if (!keynull[i][c])
						keys[i][c] = datumCopy(d, false, -1);
				}
			}
		}

		/*
		 * A kept table must not lose the subject's rows to a cascade, nor
		 * stop the deletion of their parent: refused before anything changes.
		 */
		for (i = 0; i < fg_n; i++)
		{
			FgTable    *t = &fg_tables[i];

			if (t->ndanger == 0 || empty[i] || t->count_plan == NULL)
				continue;
			fg_exec(t, t->count_plan, tparams[i], tnulls[i]);
			if (fg_count() > 0)
				fg_refuse_cascade(t);
		}

		/*
		 * The changes, children first.  The calling role must hold the
		 * privilege the change needs (DELETE, UPDATE to anonymize, SELECT to
		 * count kept rows) on every table holding rows of the subject; a
		 * table without any is left alone whatever the role may do there
		 * (anybody with REFERENCES on a registered table can make a table
		 * join the reach: it must not stop every erasure).
		 */
		for (i = 0; i < fg_n; i++)
		{
			int			k = fg_change_order[i];
			FgTable    *t = &fg_tables[k];
			AclMode		mode = t->treat == 'd' ? ACL_DELETE : t->treat == 'a' ? ACL_UPDATE : ACL_SELECT;
			const char *priv = t->treat == 'd' ? "DELETE" : t->treat == 'a' ? "UPDATE" : "SELECT";

			if (empty[k])
				continue;
			if (pg_class_aclcheck(t->relid, caller, mode) != ACLCHECK_OK)
			{
				if (t->count_plan == NULL)
					t->count_plan = fg_prepare(fg_count_sql(t), t->nparams,
											   fg_param_types(t));
				fg_exec(t, t->count_plan, tparams[k], tnulls[k]);
				if (fg_count() == 0)
					continue;
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied for table %s",
								DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(t->relid)))),
						 errdetail("forget_subject changes a table holding rows of the subject as its owner, for roles with the %s privilege on it.", priv),
						 errhint("Nothing was erased.")));
			}
			fg_exec(t, t->act_plan, tparams[k], tnulls[k]);
			counts[k] = (t->treat == 'k') ? fg_count() : (int64) SPI_processed;
		}

		/* the counts, in the order of change */
		initStringInfo(&out);
		appendStringInfoString(&out, "{\"tables\": {");
		for (i = 0; i < fg_n; i++)
		{
			int			k = fg_change_order[i];
			FgTable    *t = &fg_tables[k];

			if (i > 0)
				appendStringInfoString(&out, ", ");
			escape_json(&out, DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(t->relid))));
			appendStringInfo(&out, ": {\"deleted\": " INT64_FORMAT ", \"anonymized\": " INT64_FORMAT ", \"kept\": " INT64_FORMAT "}",
							 t->treat == 'd' ? counts[k] : 0, t->treat == 'a' ? counts[k] : 0,
							 t->treat == 'k' ? counts[k] : 0);
		}
		appendStringInfoString(&out, "}, \"not_reached\": [");
		for (i = 0; i < fg_nunreached; i++)
		{
			if (i > 0)
				appendStringInfoString(&out, ", ");
			escape_json(&out, fg_unreached_names[i]);
		}
		appendStringInfo(&out, "], \"spellings\": [%s]}", spell.data);
		fg_busy = false;
	}
	PG_CATCH();
	{
		fg_busy = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	result = (text *) SPI_palloc(VARHDRSZ + out.len);
	SET_VARSIZE(result, VARHDRSZ + out.len);
	memcpy(VARDATA(result), out.data, out.len);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}
