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

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
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
#include "utils/snapmgr.h"
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
	char	   *keys_sql;
	char	   *act_sql;
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

/* while a plan is being built: the tables it considers (an invalidation of one makes it stale at once) */
static bool fg_building = false;
static Oid *fg_build_rels = NULL;
static int	fg_build_nrel = 0;

/* labelled tables no registered table reaches: their OIDs and names */
static int	fg_nunreached = 0;
static Oid *fg_unreached_oids = NULL;
static char **fg_unreached_names = NULL;

PG_FUNCTION_INFO_V1(cv_forget_walk);
PG_FUNCTION_INFO_V1(cv_erasure_invalidate);
PG_FUNCTION_INFO_V1(cv_erasure_plan);

/* a relcache invalidation of a planned table or of the registry: build again */
static void
fg_relcache_callback(Datum arg, Oid relid)
{
	int			i;

	if (fg_building)
	{
		/* the plan being built read the catalog before this: built stale */
		if (!OidIsValid(relid) || relid == fg_registry[0] || relid == fg_registry[1])
			fg_gen++;
		for (i = 0; i < fg_build_nrel; i++)
			if (fg_build_rels[i] == relid)
				fg_gen++;
		return;
	}
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

/* a foreign key between two application tables (a node of the reach) */
typedef struct FgFk
{
	Oid			oid;
	Oid			child;
	Oid			parent;
	int			n;
	AttrNumber	key[INDEX_MAX_KEYS];	/* in the child */
	AttrNumber	fkey[INDEX_MAX_KEYS];	/* in the parent */
	Oid			eqop[INDEX_MAX_KEYS];	/* FK = FK */
	char		deltype;
	char	   *name;
} FgFk;

/* an ordinary or partitioned table of the application (never the extension's or the system's) */
static bool
fg_is_node(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class c;
	char	   *nsp;
	bool		ok;

	if (!HeapTupleIsValid(tup))
		return false;
	c = (Form_pg_class) GETSTRUCT(tup);
	ok = (c->relkind == RELKIND_RELATION || c->relkind == RELKIND_PARTITIONED_TABLE) && !c->relispartition;
	if (ok)
	{
		nsp = get_namespace_name(c->relnamespace);
		ok = nsp != NULL && strcmp(nsp, CV_SCHEMA) != 0 && strcmp(nsp, "pg_catalog") != 0 &&
			strcmp(nsp, "information_schema") != 0 && strcmp(nsp, "pg_toast") != 0;
	}
	ReleaseSysCache(tup);
	return ok;
}

/* an int2[] or oid[] column of a pg_constraint row into an array of n */
static int
fg_constraint_array(HeapTuple tup, TupleDesc desc, int attno, Oid elemtype, Datum *out)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attno, desc, &isnull);
	Datum	   *el;
	bool	   *nl;
	int			ne;
	int			i;

	if (isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(d), elemtype, elemtype == INT2OID ? 2 : 4, true,
					  elemtype == INT2OID ? TYPALIGN_SHORT : TYPALIGN_INT, &el, &nl, &ne);
	if (ne > INDEX_MAX_KEYS)
		elog(ERROR, "foreign key with too many columns");
	for (i = 0; i < ne; i++)
		out[i] = el[i];
	return ne;
}

/* every top-level foreign key between application tables */
static List *
fg_foreign_keys(void)
{
	Relation	rel = table_open(ConstraintRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	List	   *fks = NIL;

	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint c = (Form_pg_constraint) GETSTRUCT(tup);
		FgFk	   *fk;
		Datum		tmp[INDEX_MAX_KEYS];
		int			i;
		int			n;

		if (c->contype != CONSTRAINT_FOREIGN || OidIsValid(c->conparentid))
			continue;
		if (!fg_is_node(c->conrelid) || !fg_is_node(c->confrelid))
			continue;
		fk = palloc0(sizeof(FgFk));
		fk->oid = c->oid;
		fk->child = c->conrelid;
		fk->parent = c->confrelid;
		fk->deltype = c->confdeltype;
		fk->name = pstrdup(NameStr(c->conname));
		n = fg_constraint_array(tup, RelationGetDescr(rel), Anum_pg_constraint_conkey, INT2OID, tmp);
		for (i = 0; i < n; i++)
			fk->key[i] = DatumGetInt16(tmp[i]);
		fk->n = n;
		if (fg_constraint_array(tup, RelationGetDescr(rel), Anum_pg_constraint_confkey, INT2OID, tmp) != n)
			elog(ERROR, "foreign key %u has mismatched columns", c->oid);
		for (i = 0; i < n; i++)
			fk->fkey[i] = DatumGetInt16(tmp[i]);
		if (fg_constraint_array(tup, RelationGetDescr(rel), Anum_pg_constraint_conffeqop, OIDOID, tmp) != n)
			elog(ERROR, "foreign key %u has mismatched operators", c->oid);
		for (i = 0; i < n; i++)
			fk->eqop[i] = DatumGetObjectId(tmp[i]);
		fks = lappend(fks, fk);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return fks;
}

/* a type's schema-qualified name, quoted (never 'character', i.e. char(1)) */
static char *
fg_type_name(Oid typ)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typ));
	Form_pg_type t;
	char	   *name;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typ);
	t = (Form_pg_type) GETSTRUCT(tup);
	name = quote_qualified_identifier(get_namespace_name(t->typnamespace), NameStr(t->typname));
	ReleaseSysCache(tup);
	return name;
}

/* OPERATOR(schema.name) of an operator */
static char *
fg_operator(Oid opr)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
	Form_pg_operator o;
	char	   *s;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opr);
	o = (Form_pg_operator) GETSTRUCT(tup);
	s = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(o->oprnamespace)), NameStr(o->oprname));
	ReleaseSysCache(tup);
	return s;
}

/* a column's quoted name */
static const char *
fg_col(Oid relid, AttrNumber att)
{
	char	   *n = get_attname(relid, att, false);

	return quote_identifier(n);
}

/* the position of relid among n tables, or -1 */
static int
fg_pos(Oid *rels, int n, Oid relid)
{
	int			i;

	for (i = 0; i < n; i++)
		if (rels[i] == relid)
			return i;
	return -1;
}

/* the subject types a registered column may have (as _subject_type_ok) */
static bool
fg_subject_type_ok(Oid typ)
{
	return typ == TEXTOID || typ == VARCHAROID || typ == BPCHAROID || typ == INT2OID ||
		typ == INT4OID || typ == INT8OID || typ == NUMERICOID || typ == UUIDOID;
}

/*
 * Build the plan of an erasure (inside SPI) from the catalog and the
 * registry: the same reach _subject_reach() gives (registered tables at
 * depth 0 through their subject column; every other application table at
 * its shortest distance in foreign keys, each key towards a table of lower
 * depth followed; registered tables are reached through their own column
 * only), each table's statements prepared and kept.
 */
static void
fg_build_plan(void)
{
	uint64		gen = fg_gen;
	Oid			nsp;
	MemoryContext old;
	List	   *fks;
	ListCell   *lc;
	Oid		   *rels;
	int		   *depth;
	char	  **subjcol;
	char	   *treat;
	int			nrel = 0;
	int			cap;
	int			n;
	int			d;
	int			i;
	int			k;
	bool	   *todo;
	int			rc;
	SPITupleTable *tt;
	uint64		r;

	fg_valid = false;
	fg_free();
	if (fg_cxt == NULL)
		fg_cxt = AllocSetContextCreate(TopMemoryContext, "customer_vault erasure plan",
									   ALLOCSET_SMALL_SIZES);
	nsp = get_namespace_oid(CV_SCHEMA, false);
	fg_registry[0] = get_relname_relid("subject_tables", nsp);
	fg_registry[1] = get_relname_relid("retention_policies", nsp);
	fg_building = true;
	fg_build_rels = NULL;
	fg_build_nrel = 0;

	/* the registered tables and their subject columns */
	rc = SPI_execute("SELECT s.relid::pg_catalog.oid, s.subject_column::pg_catalog.text"
					 " FROM customer_vault.subject_tables s ORDER BY 1", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the subject registry");
	tt = SPI_tuptable;
	fks = fg_foreign_keys();
	cap = (int) SPI_processed + 2 * list_length(fks) + 1;
	rels = palloc0(sizeof(Oid) * cap);
	depth = palloc0(sizeof(int) * cap);
	subjcol = palloc0(sizeof(char *) * cap);
	treat = palloc0(cap);
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;

		rels[nrel] = DatumGetObjectId(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull));
		subjcol[nrel] = SPI_getvalue(tt->vals[r], tt->tupdesc, 2);
		depth[nrel] = 0;
		nrel++;
	}
	/* the reach, level by level (a table at most once: its shortest depth) */
	for (d = 0; d < 64; d++)
	{
		int			before = nrel;

		foreach(lc, fks)
		{
			FgFk	   *fk = lfirst(lc);
			int			p = fg_pos(rels, nrel, fk->parent);

			if (p < 0 || depth[p] != d || fg_pos(rels, nrel, fk->child) >= 0)
				continue;
			rels[nrel] = fk->child;
			depth[nrel] = d + 1;
			nrel++;
		}
		if (nrel == before)
			break;
	}
	fg_build_rels = rels;
	fg_build_nrel = nrel;
	/* the order keys are read in: by depth, then OID */
	for (i = 1; i < nrel; i++)
		for (k = i; k > 0 && (depth[k - 1] > depth[k] ||
							  (depth[k - 1] == depth[k] && rels[k - 1] > rels[k])); k--)
		{
			Oid			to = rels[k];
			int			td = depth[k];
			char	   *ts = subjcol[k];

			rels[k] = rels[k - 1];
			depth[k] = depth[k - 1];
			subjcol[k] = subjcol[k - 1];
			rels[k - 1] = to;
			depth[k - 1] = td;
			subjcol[k - 1] = ts;
		}
	/* each table's treatment, from its retention action */
	rc = SPI_execute("SELECT rp.relid::pg_catalog.oid, rp.action FROM customer_vault.retention_policies rp", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the retention policies");
	for (i = 0; i < nrel; i++)
		treat[i] = 'd';
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *action = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
		int			p = fg_pos(rels, nrel, relid);

		if (p >= 0 && action != NULL)
			treat[p] = strcmp(action, "anonymize") == 0 ? 'a' : strcmp(action, "shred") == 0 ? 'k' : 'd';
	}

	old = MemoryContextSwitchTo(fg_cxt);
	fg_tables = palloc0(sizeof(FgTable) * Max(nrel, 1));
	fg_change_order = palloc0(sizeof(int) * Max(nrel, 1));
	MemoryContextSwitchTo(old);

	/* the order of change: a table goes once no pending table references it (in a cycle, the deepest first) */
	todo = palloc(sizeof(bool) * Max(nrel, 1));
	for (i = 0; i < nrel; i++)
		todo[i] = true;
	for (n = 0; n < nrel; n++)
	{
		int			best = -1;
		bool		best_ref = true;

		for (i = 0; i < nrel; i++)
		{
			bool		referenced = false;

			if (!todo[i])
				continue;
			foreach(lc, fks)
			{
				FgFk	   *fk = lfirst(lc);
				int			c;

				if (fk->parent != rels[i] || fk->child == rels[i])
					continue;
				c = fg_pos(rels, nrel, fk->child);
				if (c >= 0 && todo[c])
					referenced = true;
			}
			if (best < 0 || (best_ref && !referenced) ||
				(best_ref == referenced && (depth[i] > depth[best] ||
											(depth[i] == depth[best] && rels[i] < rels[best]))))
			{
				best = i;
				best_ref = referenced;
			}
		}
		todo[best] = false;
		fg_change_order[n] = best;
	}

	for (i = 0; i < nrel; i++)
	{
		FgTable    *t = &fg_tables[i];
		HeapTuple	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(rels[i]));
		Form_pg_class cform;
		char	   *qual;
		StringInfoData cond;
		StringInfoData buf;
		List	   *src = NIL;
		int			np = 0;
		Oid		   *types;
		int			p;

		if (!HeapTupleIsValid(ctup))
			elog(ERROR, "cache lookup failed for relation %u", rels[i]);
		cform = (Form_pg_class) GETSTRUCT(ctup);
		qual = psprintf("%s%s t", cform->relkind == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
						quote_qualified_identifier(get_namespace_name(cform->relnamespace), NameStr(cform->relname)));
		ReleaseSysCache(ctup);
		fg_n = i + 1;
		t->relid = rels[i];
		t->depth = depth[i];
		t->treat = treat[i];
		for (k = 0; k < nrel; k++)
			if (fg_change_order[k] == i)
				t->change_pos = k;
		initStringInfo(&cond);
		if (depth[i] == 0)
		{
			AttrNumber	att = get_attnum(rels[i], subjcol[i]);

			if (att == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("subject column %s of table %s does not exist", quote_identifier(subjcol[i]),
								DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(rels[i]))))));
			t->subject_type = get_atttype(rels[i], att);
			if (!fg_subject_type_ok(t->subject_type))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("the subject column of table %s is of type %s, which is not allowed for a subject column",
								DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(rels[i]))),
								format_type_be(t->subject_type))));
			appendStringInfo(&cond, "(t.%s OPERATOR(pg_catalog.=) ($1)::%s)",
							 quote_identifier(subjcol[i]), fg_type_name(t->subject_type));
			np = 1;
		}
		else
		{
			/* one condition per foreign key towards a table of lower depth */
			foreach(lc, fks)
			{
				FgFk	   *fk = lfirst(lc);
				int			pp = fg_pos(rels, nrel, fk->parent);
				int			offset = 0;
				ListCell   *lc2;
				int			c;

				if (fk->child != rels[i] || pp < 0 || depth[pp] >= depth[i])
					continue;
				/* where its columns start among the parent's key outputs: (child, fk) order */
				foreach(lc2, fks)
				{
					FgFk	   *o = lfirst(lc2);
					int			oc = fg_pos(rels, nrel, o->child);

					if (o->parent == fk->parent && oc >= 0 && depth[oc] > depth[pp] &&
						(o->child < fk->child || (o->child == fk->child && o->oid < fk->oid)))
						offset += o->n;
				}
				if (cond.len > 0)
					appendStringInfoString(&cond, " OR ");
				appendStringInfoChar(&cond, '(');
				for (c = 0; c < fk->n; c++)
				{
					Oid			ctyp = get_atttype(rels[i], fk->key[c]);

					src = lappend_int(src, pp);
					src = lappend_int(src, offset + c + 1);
					np++;
					appendStringInfo(&cond, "%st.%s %s ANY (($%d)::%s[])", c > 0 ? " AND " : "",
									 fg_col(rels[i], fk->key[c]), fg_operator(fk->eqop[c]), np,
									 fg_type_name(ctyp));
				}
				if (fk->n > 1)
				{
					/* composite: each column narrowed through its index, the tuples matched exactly */
					appendStringInfoString(&cond, " AND EXISTS (SELECT FROM ROWS FROM (");
					for (c = 0; c < fk->n; c++)
						appendStringInfo(&cond, "%spg_catalog.unnest(($%d)::%s[])", c > 0 ? ", " : "",
										 np - fk->n + c + 1, fg_type_name(get_atttype(rels[i], fk->key[c])));
					appendStringInfoString(&cond, ") k(");
					for (c = 0; c < fk->n; c++)
						appendStringInfo(&cond, "%sv%d", c > 0 ? ", " : "", c + 1);
					appendStringInfoString(&cond, ") WHERE ");
					for (c = 0; c < fk->n; c++)
						appendStringInfo(&cond, "%st.%s %s k.v%d", c > 0 ? " AND " : "",
										 fg_col(rels[i], fk->key[c]), fg_operator(fk->eqop[c]), c + 1);
					appendStringInfoChar(&cond, ')');
				}
				appendStringInfoChar(&cond, ')');
			}
		}
		t->nparams = np;
		t->src_pos = MemoryContextAllocZero(fg_cxt, sizeof(int) * Max(np, 1));
		t->src_col = MemoryContextAllocZero(fg_cxt, sizeof(int) * Max(np, 1));
		for (p = 0; p < np && depth[i] > 0; p++)
		{
			t->src_pos[p] = list_nth_int(src, 2 * p);
			t->src_col[p] = list_nth_int(src, 2 * p + 1);
		}
		types = MemoryContextAlloc(fg_cxt, sizeof(Oid) * Max(np, 1));
		for (p = 0; p < np; p++)
			types[p] = depth[i] == 0 ? TEXTOID : TEXTARRAYOID;
		t->types = types;

		/* what the children need of this table's rows: one text[] per key column */
		initStringInfo(&buf);
		{
			/* in (child, fk) order, as the offsets above count them */
			List	   *mine = NIL;
			ListCell   *lc3;

			foreach(lc, fks)
			{
				FgFk	   *fk = lfirst(lc);
				int			child = fg_pos(rels, nrel, fk->child);

				if (fk->parent == rels[i] && child >= 0 && depth[child] > depth[i])
					mine = lappend(mine, fk);
			}
			for (k = 1; k < list_length(mine); k++)
			{
				int			j;

				for (j = k; j > 0; j--)
				{
					FgFk	   *a = list_nth(mine, j - 1);
					FgFk	   *b = list_nth(mine, j);

					if (a->child > b->child || (a->child == b->child && a->oid > b->oid))
					{
						list_nth_cell(mine, j - 1)->ptr_value = b;
						list_nth_cell(mine, j)->ptr_value = a;
					}
				}
			}
			foreach(lc3, mine)
			{
				FgFk	   *fk = lfirst(lc3);
				int			c;
				int			cc;

				for (c = 0; c < fk->n; c++)
				{
					appendStringInfo(&buf, "%spg_catalog.array_agg(%s(t.%s)::pg_catalog.text) FILTER (WHERE ",
									 buf.len > 0 ? ", " : "", fk->n == 1 ? "DISTINCT " : "",
									 fg_col(rels[i], fk->fkey[c]));
					for (cc = 0; cc < fk->n; cc++)
						appendStringInfo(&buf, "%st.%s IS NOT NULL", cc > 0 ? " AND " : "",
										 fg_col(rels[i], fk->fkey[cc]));
					appendStringInfoChar(&buf, ')');
				}
			}
		}
		if (buf.len > 0)
			t->keys_sql = MemoryContextStrdup(fg_cxt, psprintf("SELECT %s FROM %s WHERE %s", buf.data, qual, cond.data));
		t->count_sql = MemoryContextStrdup(fg_cxt, psprintf("SELECT pg_catalog.count(*) FROM %s WHERE %s", qual, cond.data));
		if (t->treat == 'd')
			t->act_sql = MemoryContextStrdup(fg_cxt, psprintf("DELETE FROM %s WHERE %s", qual, cond.data));
		else if (t->treat == 'k')
			t->act_sql = t->count_sql;
		else
		{
			/* the PII-labelled columns (labels of a partitioned table apply to its partitions) */
			Oid			argt = OIDOID;
			Datum		arg = ObjectIdGetDatum(rels[i]);
			Datum	   *el;
			bool	   *nl;
			int			ne = 0;
			bool		isnull;
			Datum		v;

			if (SPI_execute_with_args("SELECT customer_vault._pii_columns($1::pg_catalog.regclass)",
									  1, &argt, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "customer_vault._pii_columns did not answer");
			v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
				deconstruct_array(DatumGetArrayTypeP(v), NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &el, &nl, &ne);
			if (ne > 0)
			{
				StringInfoData set;
				StringInfoData any;
				StringInfoData names;

				initStringInfo(&set);
				initStringInfo(&any);
				initStringInfo(&names);
				for (k = 0; k < ne; k++)
				{
					const char *c = quote_identifier(NameStr(*DatumGetName(el[k])));

					appendStringInfo(&set, "%s%s = NULL", k > 0 ? ", " : "", c);
					appendStringInfo(&any, "%st.%s IS NOT NULL", k > 0 ? " OR " : "", c);
					appendStringInfo(&names, "%s%s", k > 0 ? "," : "", NameStr(*DatumGetName(el[k])));
				}
				t->act_sql = MemoryContextStrdup(fg_cxt, psprintf("UPDATE %s SET %s WHERE (%s) AND (%s)",
																  qual, set.data, cond.data, any.data));
				t->pii = MemoryContextStrdup(fg_cxt, names.data);
			}
			else
				t->pii = MemoryContextStrdup(fg_cxt, "");
		}
		/* a kept table must not lose the subject's rows to a cascade, nor stop a deletion */
		if (t->treat != 'd')
		{
			List	   *dl = NIL;

			foreach(lc, fks)
			{
				FgFk	   *fk = lfirst(lc);
				int			pp = fg_pos(rels, nrel, fk->parent);

				if (fk->child == rels[i] && pp >= 0 && treat[pp] == 'd' &&
					(fk->deltype == FKCONSTR_ACTION_CASCADE || fk->deltype == FKCONSTR_ACTION_RESTRICT ||
					 fk->deltype == FKCONSTR_ACTION_NOACTION))
					dl = lappend(dl, fk);
			}
			if (dl != NIL)
			{
				/* the first by name */
				FgFk	   *first = linitial(dl);

				foreach(lc, dl)
					if (strcmp(((FgFk *) lfirst(lc))->name, first->name) < 0)
						first = lfirst(lc);
				t->ndanger = 1;
				t->danger = MemoryContextAllocZero(fg_cxt, sizeof(char *) * 3);
				t->danger[0] = MemoryContextStrdup(fg_cxt, first->name);
				t->danger[1] = MemoryContextStrdup(fg_cxt, DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(first->parent))));
				t->danger[2] = MemoryContextStrdup(fg_cxt, psprintf("%c", first->deltype));
			}
		}
		/* the statements, kept */
		if (t->keys_sql != NULL)
			t->keys_plan = fg_prepare(t->keys_sql, np, types);
		if (t->act_sql != NULL)
			t->act_plan = fg_prepare(t->act_sql, np, types);
		if (t->ndanger > 0)
			t->count_plan = fg_prepare(t->count_sql, np, types);
	}
	fg_n = nrel;

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
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull));
		char	   *name = SPI_getvalue(tt->vals[r], tt->tupdesc, 2);

		if (fg_pos(rels, nrel, relid) >= 0)
			continue;
		fg_unreached_oids[fg_nunreached] = relid;
		fg_unreached_names[fg_nunreached] = MemoryContextStrdup(fg_cxt, name);
		fg_nunreached++;
	}
	fg_building = false;
	fg_build_rels = NULL;
	fg_build_nrel = 0;
	fg_valid = (gen == fg_gen);
}

/*
 * Build the plan under the latest snapshot, not the caller's: a plan built
 * inside a REPEATABLE READ or SERIALIZABLE transaction would otherwise read
 * the registry, the retention policies and the labels as they were when
 * that transaction began (the invalidations of later changes already
 * consumed) and be kept for the whole session.  The catalog is read with
 * catalog snapshots anyway; the statements run later under the caller's
 * snapshot.
 */
static void
fg_build(void)
{
	PushActiveSnapshot(GetLatestSnapshot());
	fg_build_plan();
	PopActiveSnapshot();
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
 * pinned search_path and row security off (as maint.c runs maintenance),
 * and the output settings pinned (extra_float_digits, DateStyle,
 * IntervalStyle, bytea_output) so the keys a parent gives its children as
 * text read back as the same values whatever the caller set.
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
	/* foreign-key values pass from parent to child as text: exact forms only */
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("DateStyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("IntervalStyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION,
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
		fg_building = false;
		fg_build_rels = NULL;
		fg_build_nrel = 0;
		PG_RE_THROW();
	}
	PG_END_TRY();
	result = (text *) SPI_palloc(VARHDRSZ + out.len);
	SET_VARSIZE(result, VARHDRSZ + out.len);
	memcpy(VARDATA(result), out.data, out.len);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}

/*
 * customer_vault._erasure_plan(): the kept plan of this session (built
 * first if needed), one row per table: what forget_subject runs on it.
 */
Datum
cv_erasure_plan(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	if (fg_busy)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("the erasure plan cannot be read inside an erasure")));
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	fg_busy = true;
	PG_TRY();
	{
		if (!fg_valid)
			fg_build();
	}
	PG_FINALLY();
	{
		fg_busy = false;
		fg_building = false;
		fg_build_rels = NULL;
		fg_build_nrel = 0;
	}
	PG_END_TRY();
	for (i = 0; i < fg_n; i++)
	{
		FgTable    *t = &fg_tables[i];
		Datum		values[12];
		bool		nulls[12];
		Datum	   *src;
		Datum	   *dg;
		int			p;
		MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);

		memset(nulls, 0, sizeof(nulls));
		values[0] = ObjectIdGetDatum(t->relid);
		values[1] = Int32GetDatum(t->depth);
		values[2] = CStringGetTextDatum(t->treat == 'd' ? "delete" : t->treat == 'a' ? "anonymize" : "keep");
		values[3] = Int32GetDatum(i);
		values[4] = Int32GetDatum(t->change_pos);
		values[5] = ObjectIdGetDatum(t->subject_type);
		nulls[5] = !OidIsValid(t->subject_type);
		values[6] = t->keys_sql ? CStringGetTextDatum(t->keys_sql) : (Datum) 0;
		nulls[6] = t->keys_sql == NULL;
		src = palloc(sizeof(Datum) * Max(2 * t->nparams, 1));
		for (p = 0; t->depth > 0 && p < t->nparams; p++)
		{
			src[2 * p] = Int32GetDatum(t->src_pos[p]);
			src[2 * p + 1] = Int32GetDatum(t->src_col[p]);
		}
		values[7] = PointerGetDatum(construct_array(src, t->depth > 0 ? 2 * t->nparams : 0, INT4OID, 4, true, TYPALIGN_INT));
		values[8] = t->act_sql ? CStringGetTextDatum(t->act_sql) : (Datum) 0;
		nulls[8] = t->act_sql == NULL;
		values[9] = CStringGetTextDatum(t->count_sql);
		dg = palloc(sizeof(Datum) * 3);
		for (p = 0; p < 3 * t->ndanger; p++)
			dg[p] = CStringGetTextDatum(t->danger[p]);
		values[10] = PointerGetDatum(construct_array(dg, 3 * t->ndanger, TEXTOID, -1, false, TYPALIGN_INT));
		values[11] = t->pii ? CStringGetTextDatum(t->pii) : (Datum) 0;
		nulls[11] = t->pii == NULL;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return (Datum) 0;
}
