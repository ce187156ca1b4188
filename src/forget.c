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
 *		registry or the retention policies (triggers on those two
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
#include "access/stratnum.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_seclabel.h"
#include "access/tableam.h"
#include "access/heapam.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/numeric.h"
#include "utils/jsonb.h"
#include "mb/pg_wchar.h"
#include "utils/datetime.h"
#include "catalog/pg_collation.h"
#if PG_VERSION_NUM >= 160000
#include "nodes/miscnodes.h"
#endif

/* one table of the erasure plan */
typedef struct FgTable
{
	Oid			relid;
	Oid			owner;
	bool		refonly;		/* joined only through REFERENCES of another owner */
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
	Oid			inh_parent;		/* an inheritance child: the registered table above it */
	char	   *from_sql;		/* "[ONLY] schema.table t" */
	char	   *cond_sql;		/* the subject's rows (parameters as the statements') */
	char	   *rows_sql;		/* export_subject's read, built when first needed */
	SPIPlanPtr	rows_plan;		/* prepared when first needed */
	Oid			pc_rel;			/* the table whose protected columns rows_sql opens */
	char	   *nspname;		/* the schema and name the statements name it by */
	char	   *relname;
	char		relkind;
	bool		reanalysable;	/* every other name its statements use is pg_catalog's or the extension's */
	Oid			ret_from;		/* the table whose retention policy gives treat (InvalidOid: none) */
	SPIPlanPtr	seal_plan;		/* kept ('k') at depth 0: the spellings its rows are sealed under */
} FgTable;

static MemoryContext fg_cxt = NULL;
static FgTable *fg_tables = NULL;
static int	fg_n = 0;
static int *fg_change_order = NULL;
static bool fg_valid = false;
static uint64 fg_gen = 0;
static Oid	fg_registry[2] = {InvalidOid, InvalidOid};
static bool fg_busy = false;

/*
 * The walk under way: the plan's generation when it began (fg_begin_walk)
 * and what it is ("erasure" or "export"); NULL between walks.  A kept
 * statement runs only while the plan is still the one the walk began with
 * (fg_exec): code a table's owner runs inside the walk (a trigger, a cast,
 * a function of a column's type) must not make a statement be analysed
 * again by name against another object and run as another owner.
 */
static uint64 fg_walk_gen = 0;
static const char *fg_walk_kind = NULL;

/* while a plan is being built: the tables it considers (an invalidation of one makes it stale at once) */
static bool fg_building = false;
static Oid *fg_build_rels = NULL;
static int	fg_build_nrel = 0;

/*
 * The types subjects are compared in (forget_subject's holds and consents):
 * those of the registered subject columns and of the retention policies'
 * subject columns, but text and varchar (compared as text); the tables of
 * the retention policies' columns are watched like the planned ones.
 */
#define FG_MAX_TYPES 8
static Oid	fg_match_types[FG_MAX_TYPES];
static int	fg_nmatch = 0;

/*
 * Whether some registered (or retention policy's) subject column is of type
 * text or varchar: then two different texts are two subjects, and no other
 * spelling's consents or keys belong to the subject (fg_same_subject).
 */
static bool fg_text_compared = false;
static Oid *fg_watch = NULL;
static int	fg_nwatch = 0;

/*
 * The tables of the reach with inheritance children (registered or
 * reaching them through foreign keys), and how many tables
 * (themselves included) find_all_inheritors gave when the plan was built: a
 * child added later sends no invalidation the plan hears, so each erasure
 * counts again (fg_children_changed).
 */
static Oid *fg_inh_parents = NULL;
static int *fg_inh_counts = NULL;
static int	fg_ninh_parents = 0;
static int	fg_inh_cap = 0;

/* how many tables find_all_inheritors gave for a table of the plan (fg_children_changed) */
static void
fg_note_children(Oid relid, int count)
{
	int			k;

	for (k = 0; k < fg_ninh_parents; k++)
		if (fg_inh_parents[k] == relid)
			return;
	if (fg_ninh_parents >= fg_inh_cap)
	{
		int			cap = Max(64, 2 * fg_inh_cap);

		if (fg_inh_parents == NULL)
		{
			fg_inh_parents = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * cap);
			fg_inh_counts = MemoryContextAlloc(TopMemoryContext, sizeof(int) * cap);
		}
		else
		{
			fg_inh_parents = repalloc(fg_inh_parents, sizeof(Oid) * cap);
			fg_inh_counts = repalloc(fg_inh_counts, sizeof(int) * cap);
		}
		fg_inh_cap = cap;
	}
	fg_inh_parents[fg_ninh_parents] = relid;
	fg_inh_counts[fg_ninh_parents] = count;
	fg_ninh_parents++;
}

/* the statements of forget_subject itself, kept */
static SPIPlanPtr fg_plan_holdlock = NULL;
static SPIPlanPtr fg_plan_holdinit = NULL;
static SPIPlanPtr fg_plan_head = NULL;
static SPIPlanPtr fg_plan_headinit = NULL;
static SPIPlanPtr fg_plan_redact = NULL;

/* the owner the walk currently acts as (InvalidOid: the caller) */
static Oid	fg_cur_owner = InvalidOid;
static CvAsTableOwner fg_sw;

/* labelled tables no registered table reaches: their OIDs and names */
static int	fg_nunreached = 0;
static Oid *fg_unreached_oids = NULL;
static char **fg_unreached_names = NULL;

PG_FUNCTION_INFO_V1(cv_forget_walk);
PG_FUNCTION_INFO_V1(cv_erasure_invalidate);
PG_FUNCTION_INFO_V1(cv_erasure_plan);
PG_FUNCTION_INFO_V1(cv_export_walk);

static void fg_evid_inval(Oid relid);

/*
 * The subject hashes this erasure computed (spelling, hash), so that the
 * receipt does not compute its spelling's again; reset by each erasure.
 */
static List *fg_hashes = NIL;

/* the plain spellings of the subject in hold entries of hash version 1 (fg_hold_scan), for the redaction */
static List *fg_hold_spellings = NIL;

/*
 * A relcache invalidation of a planned table or of the registry: build
 * again.  Called by the extension's one relcache callback (keys.c).
 */
void
ForgetRelcacheInval(Oid relid)
{
	int			i;

	fg_evid_inval(relid);

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
	/* (also while already stale: fg_gen tells a walk whether anything it uses changed since it began) */
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
	for (i = 0; i < fg_nwatch; i++)
		if (fg_watch[i] == relid)
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

/* row (and TRUNCATE) trigger on subject_tables and retention_policies: every backend builds its erasure plan again */
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
		if (fg_tables[i].rows_plan)
			SPI_freeplan(fg_tables[i].rows_plan);
		if (fg_tables[i].seal_plan)
			SPI_freeplan(fg_tables[i].seal_plan);
	}
	fg_n = 0;
	fg_tables = NULL;
	fg_change_order = NULL;
	fg_nunreached = 0;
	fg_unreached_oids = NULL;
	fg_unreached_names = NULL;
	fg_nmatch = 0;
	fg_text_compared = false;
	fg_watch = NULL;
	fg_nwatch = 0;
	if (fg_cxt != NULL)
		MemoryContextReset(fg_cxt);
}

/* Prepare and keep one statement of the plan, with these cursor options */
static SPIPlanPtr
fg_prepare_opt(const char *sql, int nparams, Oid *types, int options)
{
	SPIPlanPtr	p = SPI_prepare_cursor(sql, nparams, types, options);

	if (p == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(p) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return p;
}

/*
 * Prepare and keep one statement of table relid, generic: its parameters
 * are one subject or a few keys, and a custom plan per erasure would cost
 * more than the statement itself.  On a Citus table a custom plan: Citus
 * plans a statement over several shards (the keys a parent gives its
 * children, an aggregate, a DELETE by an array of keys) only with its
 * parameters' values; a generic plan failed with "could not create
 * distributed plan".
 */
static SPIPlanPtr
fg_prepare(Oid relid, const char *sql, int nparams, Oid *types)
{
	return fg_prepare_opt(sql, nparams, types,
						  CvCitusTable(relid) ? CURSOR_OPT_CUSTOM_PLAN : CURSOR_OPT_GENERIC_PLAN);
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

/*
 * An ordinary or partitioned table of the application (never the
 * extension's or the system's); a partition only when partitions is true.
 */
static bool
fg_is_table(Oid relid, bool partitions)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class c;
	char	   *nsp;
	bool		ok;

	if (!HeapTupleIsValid(tup))
		return false;
	c = (Form_pg_class) GETSTRUCT(tup);
	ok = (c->relkind == RELKIND_RELATION || c->relkind == RELKIND_PARTITIONED_TABLE) &&
		(partitions || !c->relispartition);
	if (ok)
	{
		nsp = get_namespace_name(c->relnamespace);
		ok = nsp != NULL && strcmp(nsp, CV_SCHEMA) != 0 && strcmp(nsp, "pg_catalog") != 0 &&
			strcmp(nsp, "information_schema") != 0 && strcmp(nsp, "pg_toast") != 0;
	}
	ReleaseSysCache(tup);
	return ok;
}

/* an ordinary or partitioned table of the application, not a partition (a node of the reach) */
static bool
fg_is_node(Oid relid)
{
	return fg_is_table(relid, false);
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

/*
 * Every top-level foreign key between application tables: declared on a
 * table or on a partition itself (not cloned from its partitioned table's:
 * rev-walk F4, the partition's rows naming the subject were neither
 * exported nor erased), towards a table that is not a partition.  The keys
 * towards a partition itself go to *topart (their referencing tables are
 * named in not_reached when the partition's root is in the reach).
 */
static List *
fg_foreign_keys(List **topart)
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
		if (!fg_is_table(c->conrelid, true) || !fg_is_table(c->confrelid, true))
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
		if (get_rel_relispartition(fk->parent))
			*topart = lappend(*topart, fk);
		else
			fks = lappend(fks, fk);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return fks;
}

/*
 * A foreign key is not inherited: the rows of an inheritance child of a
 * referencing table are not checked against the referenced table, but they
 * name its rows all the same (the child's columns are the parent's).  For
 * every foreign key whose referencing table has inheritance children (any
 * depth), one more entry per child with the key's columns found by name in
 * the child (its confdeltype '-': no action of its own, no cascade to check),
 * so the reach takes in the children of every table it reaches, and their
 * own referencing tables.  kids and kid_parents (nkids of them): each child
 * with the referencing table above it; other sessions' temporary tables
 * (nobody else may read them) and foreign tables (not ours to delete from)
 * are left out and gathered in temps (ntemps), named in not_reached.
 */
static int	fg_pos(Oid *rels, int n, Oid relid);

static List *
fg_inherited_keys(List *fks, Oid **kids, Oid **kid_parents, int *nkids, Oid **temps, int *ntemps)
{
	List	   *out = NIL;
	ListCell   *lc;

	foreach(lc, fks)
	{
		FgFk	   *fk = lfirst(lc);
		List	   *all;
		ListCell   *lk;

		out = lappend(out, fk);
		if (get_rel_relkind(fk->child) != RELKIND_RELATION || !has_subclass(fk->child))
			continue;
		all = find_all_inheritors(fk->child, NoLock, NULL);
		fg_note_children(fk->child, list_length(all));
		foreach(lk, all)
		{
			Oid			kid = lfirst_oid(lk);
			FgFk	   *k;
			int			c;
			bool		ok = true;

			if (kid == fk->child)
				continue;
			if (isOtherTempNamespace(get_rel_namespace(kid)) || get_rel_relkind(kid) == RELKIND_FOREIGN_TABLE)
			{
				if (fg_pos(*temps, *ntemps, kid) < 0)
				{
					*temps = repalloc(*temps, sizeof(Oid) * (*ntemps + 1));
					(*temps)[(*ntemps)++] = kid;
				}
				continue;
			}
			if (!fg_is_node(kid))
				continue;
			k = palloc(sizeof(FgFk));
			memcpy(k, fk, sizeof(FgFk));
			k->child = kid;
			k->deltype = '-';
			for (c = 0; c < fk->n && ok; c++)
			{
				char	   *name = get_attname(fk->child, fk->key[c], true);

				k->key[c] = name ? get_attnum(kid, name) : InvalidAttrNumber;
				ok = k->key[c] != InvalidAttrNumber;
			}
			if (!ok)
				continue;
			out = lappend(out, k);
			*kids = repalloc(*kids, sizeof(Oid) * (*nkids + 1));
			*kid_parents = repalloc(*kid_parents, sizeof(Oid) * (*nkids + 1));
			(*kids)[*nkids] = kid;
			(*kid_parents)[*nkids] = fk->child;
			(*nkids)++;
		}
	}
	return out;
}

/*
 * Whether a name the statements of the table being built use (a type, an
 * operator) lies outside pg_catalog and the extension's schema, where
 * another role could drop it and make another object of the same name.
 */
static bool fg_foreign_name = false;

/* note a namespace of a name the statements use (fg_foreign_name) */
static void
fg_note_namespace(Oid nsp)
{
	if (nsp != PG_CATALOG_NAMESPACE && nsp != get_namespace_oid(CV_SCHEMA, true))
		fg_foreign_name = true;
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
	fg_note_namespace(t->typnamespace);
	name = quote_qualified_identifier(get_namespace_name(t->typnamespace), NameStr(t->typname));
	ReleaseSysCache(tup);
	return name;
}

/*
 * "lhs OPERATOR(schema.name) [ANY] (rhs)" with the operator opr and no other
 * (CvOperatorClauseOpr: a foreign key's column of a domain over a type whose
 * equality is outside pg_catalog, citext's in public, would let an operator
 * on the domain made by whoever may create there run as the table's owner);
 * the names it uses noted (fg_foreign_name)
 */
static char *
fg_operator_clause(Oid opr, const char *lhs, Oid lhstype, const char *rhs, Oid rhstype, bool any)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
	Form_pg_operator o;
	Oid			left;
	Oid			right;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opr);
	o = (Form_pg_operator) GETSTRUCT(tup);
	fg_note_namespace(o->oprnamespace);
	left = o->oprleft;
	right = o->oprright;
	ReleaseSysCache(tup);
	/* the operand types it may cast to */
	if (OidIsValid(left))
		(void) fg_type_name(left);
	if (OidIsValid(right))
		(void) fg_type_name(right);
	return CvOperatorClauseOpr(opr, lhs, lhstype, rhs, rhstype, any);
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

/* an extension table (its local rows under Citus), opened for reading */
static Relation
fg_open_ext(const char *name, Oid *idx, const char *idxname)
{
	Oid			nsp = get_namespace_oid(CV_SCHEMA, false);
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table customer_vault.%s does not exist", name)));
	if (idx != NULL)
	{
		*idx = get_relname_relid(idxname, nsp);
		if (!OidIsValid(*idx))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("index customer_vault.%s does not exist", idxname)));
	}
	relid = CvCitusRowsRelation(relid, idx, idx != NULL ? 1 : 0);
	return table_open(relid, AccessShareLock);
}

/* a column's number in a table of the extension, by name */
static AttrNumber
fg_attnum(Relation rel, const char *col)
{
	AttrNumber	a = get_attnum(RelationGetRelid(rel), col);

	if (a == InvalidAttrNumber)
		elog(ERROR, "column %s of %s does not exist", col, RelationGetRelationName(rel));
	return a;
}

/* a text or name column of a heap tuple as a C string, NULL for NULL */
static char *
fg_getstr(HeapTuple tup, TupleDesc desc, AttrNumber a)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, a, desc, &isnull);

	if (isnull)
		return NULL;
	if (TupleDescAttr(desc, a - 1)->atttypid == NAMEOID)
		return pstrdup(NameStr(*DatumGetName(d)));
	return TextDatumGetCString(d);
}

/* a registered table or a retention policy, as read for the plan */
typedef struct FgReg
{
	Oid			relid;
	char	   *col;			/* subject column, or NULL */
	char	   *action;			/* retention_policies only */
} FgReg;

/* by table OID */
static int
fg_reg_cmp(const void *a, const void *b)
{
	Oid			x = ((const FgReg *) a)->relid;
	Oid			y = ((const FgReg *) b)->relid;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Every row of subject_tables or retention_policies (with_action), read
 * directly under the active snapshot (the plan's: the latest), by table OID.
 */
static FgReg *
fg_read_registry(const char *table, bool with_action, int *n)
{
	Relation	rel = fg_open_ext(table, NULL, NULL);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	a_rel = fg_attnum(rel, "relid");
	AttrNumber	a_col = fg_attnum(rel, "subject_column");
	AttrNumber	a_act = with_action ? fg_attnum(rel, "action") : InvalidAttrNumber;
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	HeapTuple	tup;
	int			cap = 16;
	FgReg	   *rows = palloc(sizeof(FgReg) * cap);

	*n = 0;
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, a_rel, desc, &isnull);

		if (isnull)
			continue;
		if (*n == cap)
		{
			cap *= 2;
			rows = repalloc(rows, sizeof(FgReg) * cap);
		}
		rows[*n].relid = DatumGetObjectId(d);
		rows[*n].col = fg_getstr(tup, desc, a_col);
		rows[*n].action = with_action ? fg_getstr(tup, desc, a_act) : NULL;
		(*n)++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	qsort(rows, *n, sizeof(FgReg), fg_reg_cmp);
	return rows;
}

/* a labelled table: OID and name */
typedef struct FgLabelled
{
	Oid			relid;
	char	   *name;
} FgLabelled;

/* by name, bytewise */
static int
fg_labelled_cmp(const void *a, const void *b)
{
	return strcmp(((const FgLabelled *) a)->name, ((const FgLabelled *) b)->name);
}

/*
 * The ordinary and partitioned tables (not partitions) with a column
 * labelled by customer_vault, each once, by name (pg_seclabel read
 * directly).
 */
static FgLabelled *
fg_labelled_tables(int *n)
{
	Relation	rel = table_open(SecLabelRelationId, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	int			cap = 16;
	FgLabelled *rows = palloc(sizeof(FgLabelled) * cap);
	int			i;

	*n = 0;
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		FormData_pg_seclabel *l = (FormData_pg_seclabel *) GETSTRUCT(tup);
		char	   *provider;
		HeapTuple	ctup;
		bool		ok;
		bool		dup = false;

		if (l->classoid != RelationRelationId || l->objsubid <= 0)
			continue;
		provider = fg_getstr(tup, desc, Anum_pg_seclabel_provider);
		if (provider == NULL || strcmp(provider, "customer_vault") != 0)
			continue;
		for (i = 0; i < *n && !dup; i++)
			dup = rows[i].relid == l->objoid;
		if (dup)
			continue;
		ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(l->objoid));
		if (!HeapTupleIsValid(ctup))
			continue;
		ok = (((Form_pg_class) GETSTRUCT(ctup))->relkind == RELKIND_RELATION ||
			  ((Form_pg_class) GETSTRUCT(ctup))->relkind == RELKIND_PARTITIONED_TABLE) &&
			!((Form_pg_class) GETSTRUCT(ctup))->relispartition;
		ReleaseSysCache(ctup);
		if (!ok)
			continue;
		if (*n == cap)
		{
			cap *= 2;
			rows = repalloc(rows, sizeof(FgLabelled) * cap);
		}
		rows[*n].relid = l->objoid;
		rows[*n].name = DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(l->objoid)));
		(*n)++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	qsort(rows, *n, sizeof(FgLabelled), fg_labelled_cmp);
	return rows;
}

/*
 * A subject column must compare in a deterministic collation: the walk's
 * statements compare in the column's collation, the holds, the consents and
 * the keys byte for byte (fg_same_value, fg_equal), so a case-insensitive
 * column would let forget_subject('ALICE@example.com') delete the rows of
 * 'alice@example.com' past her legal hold.  register_subject_table and
 * set_retention refuse such a column; a collation changed since
 * (ALTER COLUMN ... TYPE ... COLLATE) refuses the erasure and the export.
 */
static void
fg_check_collation(Oid relid, AttrNumber att)
{
	Oid			typ;
	int32		typmod;
	Oid			coll;

	get_atttypetypmodcoll(relid, att, &typ, &typmod, &coll);
	if (!OidIsValid(coll) || get_collation_isdeterministic(coll))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("subject column %s of table %s has the nondeterministic collation %s",
					quote_identifier(get_attname(relid, att, false)),
					DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relid))),
					generate_collation_name(coll)),
			 errdetail("Legal holds, consents and subject keys name a subject byte for byte; a column comparing texts that differ as equal would let one spelling erase the rows of another, past its holds."),
			 errhint("Give the column a deterministic collation (ALTER TABLE ... ALTER COLUMN ... TYPE ... COLLATE \"C\"), and store the subject in one spelling (e.g. lower case).")));
}

/*
 * The columns a foreign key followed by the walk compares (the child's
 * referencing columns, the parent's referenced ones whose values are handed
 * down) must compare in deterministic collations too: the child's condition
 * compares in the child column's collation, so a case-insensitive column
 * there matches the rows of another subject ('ALICE@example.com' for
 * 'alice@example.com', review24 HIGH-1), which forget_subject deleted past
 * that subject's legal hold and export_subject handed out.  Checked every
 * time the plan is built: an ALTER COLUMN of either table invalidates it.
 */
static void
fg_check_key_collation(const FgFk *fk)
{
	int			c;

	for (c = 0; c < fk->n; c++)
	{
		int			side;

		for (side = 0; side < 2; side++)
		{
			Oid			relid = side == 0 ? fk->child : fk->parent;
			AttrNumber	att = side == 0 ? fk->key[c] : fk->fkey[c];
			Oid			typ;
			int32		typmod;
			Oid			coll;

			get_atttypetypmodcoll(relid, att, &typ, &typmod, &coll);
			if (!OidIsValid(coll) || get_collation_isdeterministic(coll))
				continue;
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("foreign key %s of table %s compares column %s of table %s in the nondeterministic collation %s",
							quote_identifier(fk->name),
							DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(fk->child))),
							quote_identifier(get_attname(relid, att, false)),
							DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relid))),
							generate_collation_name(coll)),
					 errdetail("The erasure and the export follow this key to the rows of the subject; a column comparing texts that differ as equal would reach the rows of another subject, past its legal holds."),
					 errhint("Give the key's columns a deterministic collation (ALTER TABLE ... ALTER COLUMN ... TYPE ... COLLATE \"C\") in both tables.")));
		}
	}
}

/* a type subjects are compared in (text and varchar compare as text) */
static void
fg_add_match_type(Oid typ)
{
	int			i;

	if (typ == TEXTOID || typ == VARCHAROID)
		fg_text_compared = true;
	if (!fg_subject_type_ok(typ) || typ == TEXTOID || typ == VARCHAROID)
		return;
	for (i = 0; i < fg_nmatch; i++)
		if (fg_match_types[i] == typ)
			return;
	if (fg_nmatch < FG_MAX_TYPES)
		fg_match_types[fg_nmatch++] = typ;
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
	FgReg	   *reg;
	int			nreg;
	FgReg	   *pol;
	int			npol;
	FgLabelled *lab;
	int			nlab;
	Oid		   *inh_child;
	Oid		   *inh_parent;
	int			ninh = 0;
	bool	   *own;
	int			r;
	Oid		   *foreign_kids = palloc(sizeof(Oid));
	int			nforeign = 0;
	Oid		   *temp_kids = palloc(sizeof(Oid));
	int			ntemp = 0;
	Oid		   *reg_oids;
	Oid		   *ret_from;
	List	   *topart = NIL;

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
	reg = fg_read_registry("subject_tables", false, &nreg);
	reg_oids = palloc(sizeof(Oid) * Max(nreg, 1));
	for (r = 0; r < nreg; r++)
		reg_oids[r] = reg[r].relid;
	fks = fg_foreign_keys(&topart);
	/*
	 * The inheritance children of the registered tables (any depth): their
	 * rows are not the parent's (its statements read ONLY the parent), so
	 * each is a table of its own at depth 0, by the parent's subject column,
	 * changed as its own owner with its own privilege checked.
	 */
	inh_child = palloc(sizeof(Oid) * 1);
	inh_parent = palloc(sizeof(Oid) * 1);
	fg_ninh_parents = 0;
	for (r = 0; r < nreg; r++)
	{
		List	   *kids;
		ListCell   *lk;

		if (get_rel_relkind(reg[r].relid) != RELKIND_RELATION || !has_subclass(reg[r].relid))
			continue;
		kids = find_all_inheritors(reg[r].relid, NoLock, NULL);
		fg_note_children(reg[r].relid, list_length(kids));
		foreach(lk, kids)
		{
			Oid			kid = lfirst_oid(lk);

			if (kid == reg[r].relid)
				continue;
			/* another session's temporary table: nobody else may read it (named in not_reached) */
			if (isOtherTempNamespace(get_rel_namespace(kid)))
			{
				if (fg_pos(temp_kids, ntemp, kid) < 0)
				{
					temp_kids = repalloc(temp_kids, sizeof(Oid) * (ntemp + 1));
					temp_kids[ntemp++] = kid;
				}
				continue;
			}
			inh_child = repalloc(inh_child, sizeof(Oid) * (ninh + 1));
			inh_parent = repalloc(inh_parent, sizeof(Oid) * (ninh + 1));
			inh_child[ninh] = kid;
			inh_parent[ninh] = reg[r].relid;
			ninh++;
		}
	}
	cap = nreg + ninh + 2 * list_length(fks) + 1;
	rels = palloc0(sizeof(Oid) * cap);
	depth = palloc0(sizeof(int) * cap);
	subjcol = palloc0(sizeof(char *) * cap);
	treat = palloc0(cap);
	for (r = 0; r < nreg; r++)
	{
		rels[nrel] = reg[r].relid;
		subjcol[nrel] = reg[r].col;
		depth[nrel] = 0;
		nrel++;
	}
	for (r = 0; r < ninh; r++)
	{
		int			pp;

		/*
		 * A foreign table among them: its rows are not ours to delete (the
		 * statements read ONLY the parent), so it is named in every
		 * receipt's not_reached, never an error.
		 */
		if (get_rel_relkind(inh_child[r]) == RELKIND_FOREIGN_TABLE &&
			fg_pos(foreign_kids, nforeign, inh_child[r]) < 0)
		{
			foreign_kids = repalloc(foreign_kids, sizeof(Oid) * (nforeign + 1));
			foreign_kids[nforeign++] = inh_child[r];
		}
		if (fg_pos(rels, nrel, inh_child[r]) >= 0 || !fg_is_node(inh_child[r]))
			continue;			/* registered itself, twice a child, or not a table of ours */
		pp = fg_pos(rels, nrel, inh_parent[r]);
		rels[nrel] = inh_child[r];
		subjcol[nrel] = subjcol[pp];
		depth[nrel] = 0;
		nrel++;
	}
	/* the inheritance children of the referencing tables, as referencing tables of their own */
	{
		Oid		   *fk_kids = palloc(sizeof(Oid));
		Oid		   *fk_kid_parents = palloc(sizeof(Oid));
		int			nfk_kids = 0;

		fks = fg_inherited_keys(fks, &fk_kids, &fk_kid_parents, &nfk_kids, &temp_kids, &ntemp);
		for (r = 0; r < nfk_kids; r++)
		{
			inh_child = repalloc(inh_child, sizeof(Oid) * (ninh + 1));
			inh_parent = repalloc(inh_parent, sizeof(Oid) * (ninh + 1));
			inh_child[ninh] = fk_kids[r];
			inh_parent[ninh] = fk_kid_parents[r];
			ninh++;
		}
		cap = nreg + ninh + 2 * list_length(fks) + 1;
		rels = repalloc(rels, sizeof(Oid) * cap);
		depth = repalloc(depth, sizeof(int) * cap);
		subjcol = repalloc(subjcol, sizeof(char *) * cap);
		treat = repalloc(treat, cap);
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
	/*
	 * A foreign key towards a partition itself (not its partitioned table):
	 * the keys are not the partitioned table's (a value may repeat in
	 * another partition), so its referencing table is not followed but
	 * named in not_reached when the partition's root is in the reach.
	 */
	foreach(lc, topart)
	{
		FgFk	   *fk = lfirst(lc);
		List	   *anc = get_partition_ancestors(fk->parent);
		Oid			root = anc != NIL ? llast_oid(anc) : fk->parent;

		if (fg_pos(rels, nrel, root) >= 0 && fg_pos(rels, nrel, fk->child) < 0 &&
			fg_pos(temp_kids, ntemp, fk->child) < 0)
		{
			temp_kids = repalloc(temp_kids, sizeof(Oid) * (ntemp + 1));
			temp_kids[ntemp++] = fk->child;
		}
	}
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
	pol = fg_read_registry("retention_policies", true, &npol);
	for (i = 0; i < nrel; i++)
		treat[i] = 'd';
	own = palloc0(sizeof(bool) * Max(nrel, 1));
	ret_from = palloc0(sizeof(Oid) * Max(nrel, 1));
	fg_watch = MemoryContextAllocZero(fg_cxt, sizeof(Oid) * Max(npol, 1));
	for (r = 0; r < npol; r++)
	{
		Oid			relid = pol[r].relid;
		char	   *action = pol[r].action;
		char	   *scol = pol[r].col;
		int			p = fg_pos(rels, nrel, relid);

		if (p >= 0 && action != NULL)
		{
			treat[p] = strcmp(action, "anonymize") == 0 ? 'a' : strcmp(action, "shred") == 0 ? 'k' : 'd';
			own[p] = true;
			ret_from[p] = relid;
		}
		if (scol != NULL)
		{
			AttrNumber	att = get_attnum(relid, scol);

			fg_watch[fg_nwatch++] = relid;
			if (att != InvalidAttrNumber)
			{
				fg_check_collation(relid, att);
				fg_add_match_type(get_atttype(relid, att));
			}
		}
	}
	/*
	 * A partition in the reach (through a foreign key of its own) without a
	 * retention policy of its own: its nearest partitioned ancestor's, as
	 * the rows would be treated through that table.
	 */
	for (i = 0; i < nrel; i++)
	{
		List	   *anc;
		ListCell   *la;
		bool		found = false;

		if (own[i] || !get_rel_relispartition(rels[i]))
			continue;
		anc = get_partition_ancestors(rels[i]);
		foreach(la, anc)
		{
			for (r = 0; r < npol && !found; r++)
				if (pol[r].relid == lfirst_oid(la) && pol[r].action != NULL)
				{
					treat[i] = strcmp(pol[r].action, "anonymize") == 0 ? 'a' : strcmp(pol[r].action, "shred") == 0 ? 'k' : 'd';
					ret_from[i] = pol[r].relid;
					own[i] = true;
					found = true;
				}
			if (found)
				break;
		}
	}
	/* an inheritance child without a retention policy of its own is treated as its parent */
	for (r = 0; r < ninh; r++)
	{
		int			c = fg_pos(rels, nrel, inh_child[r]);
		int			pp = fg_pos(rels, nrel, inh_parent[r]);

		if (c >= 0 && pp >= 0 && !own[c])
		{
			treat[c] = treat[pp];
			ret_from[c] = ret_from[pp];
		}
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
		t->owner = cform->relowner;
		t->relkind = cform->relkind;
		t->nspname = MemoryContextStrdup(fg_cxt, get_namespace_name(cform->relnamespace));
		t->relname = MemoryContextStrdup(fg_cxt, NameStr(cform->relname));
		qual = psprintf("%s%s t", cform->relkind == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
						quote_qualified_identifier(t->nspname, t->relname));
		ReleaseSysCache(ctup);
		fg_foreign_name = false;
		fg_n = i + 1;
		t->relid = rels[i];
		t->depth = depth[i];
		t->treat = treat[i];
		t->ret_from = ret_from[i];
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
			fg_check_collation(rels[i], att);
			fg_add_match_type(t->subject_type);
			appendStringInfo(&cond, "(t.%s OPERATOR(pg_catalog.=) ($1)::%s)",
							 quote_identifier(subjcol[i]), fg_type_name(t->subject_type));
			np = 1;

			/*
			 * An inheritance child of registered tables holds rows of the
			 * subject by each registered ancestor's subject column, and
			 * by its own when registered itself (rev-walk F3: a row
			 * naming the subject by the inherited column was neither
			 * exported nor erased): any of them, of one type (the subject
			 * is read in one; text and varchar compare as text).
			 */
			{
				List	   *cols = list_make1(subjcol[i]);

				for (k = 0; k < ninh; k++)
				{
					int			rp = fg_pos(reg_oids, nreg, inh_parent[k]);
					ListCell   *lcc;
					bool		seen_col = false;
					AttrNumber	att2;
					Oid			typ2;

					if (inh_child[k] != rels[i] || rp < 0 || reg[rp].col == NULL)
						continue;
					foreach(lcc, cols)
						if (strcmp((char *) lfirst(lcc), reg[rp].col) == 0)
							seen_col = true;
					if (seen_col)
						continue;
					att2 = get_attnum(rels[i], reg[rp].col);
					if (att2 == InvalidAttrNumber)
						continue;
					typ2 = get_atttype(rels[i], att2);
					if (typ2 != t->subject_type &&
						!((typ2 == TEXTOID || typ2 == VARCHAROID) &&
						  (t->subject_type == TEXTOID || t->subject_type == VARCHAROID)))
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("table %s inherits subject columns of different types from registered tables",
										DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(rels[i])))),
								 errdetail("Subject columns %s and %s are of types %s and %s.",
										   quote_identifier(subjcol[i]), quote_identifier(reg[rp].col),
										   format_type_be(t->subject_type), format_type_be(typ2)),
								 errhint("Give these subject columns one type (ALTER TABLE ... ALTER COLUMN ... TYPE), or take the table out of the inheritance (ALTER TABLE ... NO INHERIT).")));
					fg_check_collation(rels[i], att2);
					cols = lappend(cols, reg[rp].col);
					appendStringInfo(&cond, " OR (t.%s OPERATOR(pg_catalog.=) ($1)::%s)",
									 quote_identifier(reg[rp].col), fg_type_name(typ2));
				}
				if (list_length(cols) > 1)
				{
					char	   *c = pstrdup(cond.data);

					resetStringInfo(&cond);
					appendStringInfo(&cond, "(%s)", c);
				}
			}
		}
		else
		{
			/* one condition per foreign key towards a table of lower depth */
			t->refonly = true;
			foreach(lc, fks)
			{
				FgFk	   *fk = lfirst(lc);
				int			pp = fg_pos(rels, nrel, fk->parent);
				int			offset = 0;
				ListCell   *lc2;
				int			c;
				HeapTuple	ptup;

				if (fk->child != rels[i] || pp < 0 || depth[pp] >= depth[i])
					continue;
				fg_check_key_collation(fk);
				/* a key towards a table of its own owner: not a stranger's table */
				ptup = SearchSysCache1(RELOID, ObjectIdGetDatum(fk->parent));
				if (HeapTupleIsValid(ptup))
				{
					if (((Form_pg_class) GETSTRUCT(ptup))->relowner == t->owner)
						t->refonly = false;
					ReleaseSysCache(ptup);
				}
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
					appendStringInfo(&cond, "%s%s", c > 0 ? " AND " : "",
									 fg_operator_clause(fk->eqop[c], psprintf("t.%s", fg_col(rels[i], fk->key[c])), ctyp,
														psprintf("($%d)::%s[]", np, fg_type_name(ctyp)), ctyp, true));
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
					{
						Oid			ctyp = get_atttype(rels[i], fk->key[c]);

						appendStringInfo(&cond, "%s%s", c > 0 ? " AND " : "",
										 fg_operator_clause(fk->eqop[c], psprintf("t.%s", fg_col(rels[i], fk->key[c])), ctyp,
															psprintf("k.v%d", c + 1), ctyp, false));
					}
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
		t->from_sql = MemoryContextStrdup(fg_cxt, qual);
		t->cond_sql = MemoryContextStrdup(fg_cxt, cond.data);
		for (k = 0; k < ninh; k++)
			if (inh_child[k] == rels[i])
				t->inh_parent = inh_parent[k];
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
			/* an inheritance child without labels of its own: its parent's (the columns it inherits) */
			for (k = 0; ne == 0 && k < ninh; k++)
				if (inh_child[k] == rels[i])
				{
					arg = ObjectIdGetDatum(inh_parent[k]);
					if (SPI_execute_with_args("SELECT customer_vault._pii_columns($1::pg_catalog.regclass)",
											  1, &argt, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
						elog(ERROR, "customer_vault._pii_columns did not answer");
					v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
					if (!isnull)
						deconstruct_array(DatumGetArrayTypeP(v), NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &el, &nl, &ne);
				}
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
		t->reanalysable = !fg_foreign_name;
		/* the statements, kept */
		if (t->keys_sql != NULL)
			t->keys_plan = fg_prepare(t->relid, t->keys_sql, np, types);
		if (t->act_sql != NULL)
			t->act_plan = fg_prepare(t->relid, t->act_sql, np, types);
		if (t->ndanger > 0)
			t->count_plan = fg_prepare(t->relid, t->count_sql, np, types);

		/*
		 * A table whose rows the erasure keeps (retention action 'shred'):
		 * the subject's key must go with them, and a protected column seals
		 * under (column)::text ('42' for forget_subject('042') in a bigint
		 * column, '60.00' for a numeric 60.00), which a text subject column
		 * elsewhere may hold as another subject (cv_forget_subject).
		 */
		if (t->treat == 'k' && depth[i] == 0)
			t->seal_plan = fg_prepare(t->relid, psprintf("SELECT DISTINCT (t.%s)::pg_catalog.text FROM %s WHERE %s AND t.%s IS NOT NULL",
											   quote_identifier(subjcol[i]), qual, cond.data,
											   quote_identifier(subjcol[i])),
									  np, types);
	}
	fg_n = nrel;

	/* labelled tables the reach misses (named in every receipt) */
	lab = fg_labelled_tables(&nlab);
	fg_unreached_oids = MemoryContextAllocZero(fg_cxt, sizeof(Oid) * Max(nlab + nforeign, 1));
	fg_unreached_names = MemoryContextAllocZero(fg_cxt, sizeof(char *) * Max(nlab + nforeign, 1));
	for (r = 0; r < nlab; r++)
	{
		if (fg_pos(rels, nrel, lab[r].relid) >= 0)
			continue;
		fg_unreached_oids[fg_nunreached] = lab[r].relid;
		fg_unreached_names[fg_nunreached] = MemoryContextStrdup(fg_cxt, lab[r].name);
		fg_nunreached++;
	}
	/* the foreign inheritance children, then all of them by name */
	for (r = 0; r < nforeign; r++)
	{
		fg_unreached_oids[fg_nunreached] = foreign_kids[r];
		fg_unreached_names[fg_nunreached] =
			MemoryContextStrdup(fg_cxt, DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(foreign_kids[r]))));
		fg_nunreached++;
	}
	/*
	 * other sessions' temporary inheritance children (their rows cannot be
	 * read here), foreign children of referencing tables, tables referencing
	 * a partition of the reach itself
	 */
	if (ntemp > 0)
	{
		fg_unreached_oids = repalloc(fg_unreached_oids, sizeof(Oid) * (fg_nunreached + ntemp));
		fg_unreached_names = repalloc(fg_unreached_names, sizeof(char *) * (fg_nunreached + ntemp));
		for (r = 0; r < ntemp; r++)
		{
			fg_unreached_oids[fg_nunreached] = temp_kids[r];
			fg_unreached_names[fg_nunreached] =
				MemoryContextStrdup(fg_cxt, DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(temp_kids[r]))));
			fg_nunreached++;
		}
	}
	for (r = 1; r < fg_nunreached; r++)
		for (k = r; k > 0 && strcmp(fg_unreached_names[k - 1], fg_unreached_names[k]) > 0; k--)
		{
			Oid			to = fg_unreached_oids[k];
			char	   *tn = fg_unreached_names[k];

			fg_unreached_oids[k] = fg_unreached_oids[k - 1];
			fg_unreached_names[k] = fg_unreached_names[k - 1];
			fg_unreached_oids[k - 1] = to;
			fg_unreached_names[k - 1] = tn;
		}
	/* the inheritors of every table of the plan with children, counted (fg_children_changed) */
	for (i = 0; i < nrel; i++)
		if (get_rel_relkind(rels[i]) == RELKIND_RELATION && has_subclass(rels[i]))
			fg_note_children(rels[i], list_length(find_all_inheritors(rels[i], NoLock, NULL)));
	fg_building = false;
	fg_build_rels = NULL;
	fg_build_nrel = 0;
	fg_valid = (gen == fg_gen);
}

/*
 * Whether a table of the reach gained or lost inheritance children since the
 * plan was built (a new child sends no invalidation the plan hears); cheap
 * for tables without children (one syscache lookup each).
 */
static bool
fg_children_changed(void)
{
	int			i;
	int			k;

	for (i = 0; i < fg_n; i++)
	{
		FgTable    *t = &fg_tables[i];
		int			known = 0;

		if (get_rel_relkind(t->relid) != RELKIND_RELATION)
			continue;
		for (k = 0; k < fg_ninh_parents; k++)
			if (fg_inh_parents[k] == t->relid)
				known = fg_inh_counts[k];
		if (!has_subclass(t->relid))
		{
			if (known > 1)
				return true;
			continue;
		}
		if (list_length(find_all_inheritors(t->relid, NoLock, NULL)) != Max(known, 1))
			return true;
	}
	return false;
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
	fg_ninh_parents = 0;
	PushActiveSnapshot(GetLatestSnapshot());
	fg_build_plan();
	PopActiveSnapshot();
}

#if PG_VERSION_NUM < 160000
/*
 * PostgreSQL 15 has no soft input errors: a cheap syntactic check per type
 * family first (what the input functions of 15 accept), the input function
 * called directly when the value cannot fail (few enough digits, a small
 * exponent), and a subtransaction only for what is left (long numbers,
 * NaN and infinities).
 */

/* int2in/int4in/int8in: blanks, a sign, digits, blanks; *digits: significant ones */
static bool
fg_int_syntax(const char *s, int *digits)
{
	const char *p = s;
	bool		any = false;
	int			n = 0;

	while (*p && isspace((unsigned char) *p))
		p++;
	if (*p == '+' || *p == '-')
		p++;
	while (*p == '0')
	{
		p++;
		any = true;
	}
	while (*p >= '0' && *p <= '9')
	{
		p++;
		n++;
		any = true;
	}
	while (*p && isspace((unsigned char) *p))
		p++;
	*digits = n;
	return any && *p == '\0';
}

/*
 * numeric_in without NaN and infinities: blanks, a sign, digits with at most
 * one point (one digit at least), an exponent, blanks; *safe when it cannot
 * overflow (at most 1000 digits, an exponent of at most 3 digits)
 */
static bool
fg_numeric_syntax(const char *s, bool *safe)
{
	const char *p = s;
	int			digits = 0;
	int			edigits = 0;
	bool		point = false;

	*safe = false;
	while (*p && isspace((unsigned char) *p))
		p++;
	if (*p == '+' || *p == '-')
		p++;
	for (; (*p >= '0' && *p <= '9') || *p == '.'; p++)
	{
		if (*p == '.')
		{
			if (point)
				return false;
			point = true;
		}
		else
			digits++;
	}
	if (digits == 0)
		return false;
	if (*p == 'e' || *p == 'E')
	{
		p++;
		if (*p == '+' || *p == '-')
			p++;
		while (*p >= '0' && *p <= '9')
		{
			p++;
			edigits++;
		}
		if (edigits == 0)
			return false;
	}
	while (*p && isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		return false;
	*safe = digits <= 1000 && edigits <= 3;
	return true;
}

/* uuid_in of 15 (string_to_uuid): 32 hex digits, a hyphen after any group of 4, in braces or not */
static bool
fg_uuid_syntax(const char *s)
{
	const char *p = s;
	bool		braces = false;
	int			i;

	if (*p == '{')
	{
		p++;
		braces = true;
	}
	for (i = 0; i < 16; i++)
	{
		if (p[0] == '\0' || p[1] == '\0' ||
			!isxdigit((unsigned char) p[0]) || !isxdigit((unsigned char) p[1]))
			return false;
		p += 2;
		if (p[0] == '-' && (i % 2) == 1 && i < 15)
			p++;
	}
	if (braces)
	{
		if (*p != '}')
			return false;
		p++;
	}
	return *p == '\0';
}

/* the input function in a subtransaction: false on a data exception */
static bool
fg_input_subxact(const char *subject, Oid typinput, Oid typioparam, Datum *val)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;
	volatile Datum v = (Datum) 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		v = OidInputFunctionCall(typinput, (char *) subject, typioparam, -1);
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
	*val = v;
	return ok;
}
#endif

/*
 * Whether a text is a value of an allowed subject type, read by the type's
 * input function (built-in types only, no user code), without raising an
 * error: the soft-error path of 16 and later, on 15 a syntactic check and a
 * subtransaction only where the value could still fail.  *val: the value.
 */
static bool
fg_parse(const char *subject, Oid typ, Datum *val)
{
	Oid			typinput;
	Oid			typioparam;
#if PG_VERSION_NUM >= 160000
	ErrorSaveContext escontext = {T_ErrorSaveContext};
	FmgrInfo	flinfo;

	getTypeInputInfo(typ, &typinput, &typioparam);
	fmgr_info(typinput, &flinfo);
	return InputFunctionCallSafe(&flinfo, (char *) subject, typioparam, -1,
								 (Node *) &escontext, val);
#else
	int			digits;
	bool		safe;

	getTypeInputInfo(typ, &typinput, &typioparam);
	switch (typ)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			if (!fg_int_syntax(subject, &digits))
				return false;
			if (digits <= (typ == INT2OID ? 4 : typ == INT4OID ? 9 : 18))
				break;
			return fg_input_subxact(subject, typinput, typioparam, val);
		case NUMERICOID:
			if (fg_numeric_syntax(subject, &safe))
			{
				if (safe)
					break;
				return fg_input_subxact(subject, typinput, typioparam, val);
			}
			/* NaN and the infinities: letters of those words only */
			if (strspn(subject, " \t\n\r\v\f+-aAfFiInNtTyY") != strlen(subject))
				return false;
			return fg_input_subxact(subject, typinput, typioparam, val);
		case UUIDOID:
			if (!fg_uuid_syntax(subject))
				return false;
			break;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			break;
		default:
			return fg_input_subxact(subject, typinput, typioparam, val);
	}
	*val = OidInputFunctionCall(typinput, (char *) subject, typioparam, -1);
	return true;
#endif
}

/* two values of a subject type are equal (as its = compares them) */
static bool
fg_equal(Oid typ, Datum a, Datum b)
{
	switch (typ)
	{
		case INT2OID:
			return DatumGetInt16(a) == DatumGetInt16(b);
		case INT4OID:
			return DatumGetInt32(a) == DatumGetInt32(b);
		case INT8OID:
			return DatumGetInt64(a) == DatumGetInt64(b);
		case NUMERICOID:
			return DatumGetBool(DirectFunctionCall2(numeric_eq, a, b));
		case UUIDOID:
			return memcmp(DatumGetUUIDP(a), DatumGetUUIDP(b), UUID_LEN) == 0;
		case BPCHAROID:
			return DatumGetBool(DirectFunctionCall2Coll(bpchareq, DEFAULT_COLLATION_OID, a, b));
		default:
			return DatumGetBool(DirectFunctionCall2Coll(texteq, DEFAULT_COLLATION_OID, a, b));
	}
}

/*
 * Whether a text names a value of a subject column's type, as the erasure
 * compares subjects (one rule for every table, docs/API.md): read by the
 * type's input function; for an integer type, a text its input function
 * refuses is read as a number too, and names the integer it equals ('6e1'
 * and '60.0' name 60, as 60 = 6e1 in SQL; '1.5' and '1e30' name no
 * integer: never the integer a cast would round to).  *val: the value.
 */
static bool
fg_read(const char *subject, Oid typ, Datum *val)
{
	Datum		num;
	Numeric		n;
	int64		i;

	if (fg_parse(subject, typ, val))
		return true;
	if (typ != INT2OID && typ != INT4OID && typ != INT8OID)
		return false;
	if (!fg_parse(subject, NUMERICOID, &num))
		return false;
	n = DatumGetNumeric(num);
	if (numeric_is_nan(n) || numeric_is_inf(n))
		return false;
	/* integral, within bigint: then numeric_int8 cannot fail */
	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, num, DirectFunctionCall1(numeric_floor, num))) ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, num, NumericGetDatum(int64_to_numeric(PG_INT64_MIN)))) < 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, num, NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))) > 0)
		return false;
	i = DatumGetInt64(DirectFunctionCall1(numeric_int8, num));
	switch (typ)
	{
		case INT2OID:
			if (i < PG_INT16_MIN || i > PG_INT16_MAX)
				return false;
			*val = Int16GetDatum((int16) i);
			return true;
		case INT4OID:
			if (i < PG_INT32_MIN || i > PG_INT32_MAX)
				return false;
			*val = Int32GetDatum((int32) i);
			return true;
		default:
			*val = Int64GetDatum(i);
			return true;
	}
}

/* a value's text form in its type */
static char *
fg_output(Oid typ, Datum val)
{
	Oid			typoutput;
	bool		isvarlena;

	getTypeOutputInfo(typ, &typoutput, &isvarlena);
	return OidOutputFunctionCall(typoutput, val);
}

/*
 * Whether the subject is a value of an allowed subject type; *canon: the
 * value's text form in that type (what may_process((column)::type)
 * compares), NULL for the text types.
 */
static bool
fg_casts_to(const char *subject, Oid typ, char **canon)
{
	Datum		val;

	*canon = NULL;
	if (typ == TEXTOID || typ == VARCHAROID || typ == BPCHAROID)
		return true;
	if (!fg_read(subject, typ, &val))
		return false;
	*canon = fg_output(typ, val);
	return true;
}

/*
 * The canonical spelling of a subject among the given subject column types:
 * its text form in the first type it is a value of (integers first, read as
 * fg_read reads them, then numeric without trailing fractional zeros, then
 * uuid), so every spelling of one number gives one form ('060', '6e1',
 * '60.0' give '60' next to a bigint or a numeric column, '1.50' gives
 * '1.5' next to a numeric one); as given when none takes it.
 */
static char *
fg_canonical(const char *subject, const Oid *types, int n)
{
	static const Oid order[] = {INT8OID, INT2OID, INT4OID, NUMERICOID, UUIDOID};
	int			o;
	int			i;

	for (o = 0; o < lengthof(order); o++)
		for (i = 0; i < n; i++)
			if (types[i] == order[o])
			{
				Datum		val;

				if (fg_read(subject, order[o], &val))
				{
					if (order[o] != NUMERICOID)
						return fg_output(order[o], val);
					if (!numeric_is_nan(DatumGetNumeric(val)) && !numeric_is_inf(DatumGetNumeric(val)))
						return numeric_normalize(DatumGetNumeric(val));
				}
				break;
			}
	return pstrdup(subject);
}

PG_FUNCTION_INFO_V1(cv_canonical_subject);

/*
 * customer_vault._canonical_subject(subject text) RETURNS text: the subject
 * in the type of the registered subject columns it is a value of ('042' is
 * '42' for a bigint column), else as given; NULL for NULL.
 */
Datum
cv_canonical_subject(PG_FUNCTION_ARGS)
{
	char	   *subject;
	char	   *canon;
	Oid			types[FG_MAX_TYPES];
	int			n = 0;
	uint64		r;
	text	   *result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	subject = TextDatumGetCString(PG_GETARG_DATUM(0));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT DISTINCT a.atttypid FROM customer_vault.subject_tables s"
					" JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid"
					" AND a.attname OPERATOR(pg_catalog.=) s.subject_column AND NOT a.attisdropped"
					" WHERE a.atttypid IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype,"
					" 'pg_catalog.int8'::pg_catalog.regtype, 'pg_catalog.numeric'::pg_catalog.regtype,"
					" 'pg_catalog.uuid'::pg_catalog.regtype)", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the subject registry");
	for (r = 0; r < SPI_processed && n < FG_MAX_TYPES; r++)
	{
		bool		isnull;

		types[n++] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
	}
	canon = fg_canonical(subject, types, n);
	result = (text *) SPI_palloc(VARHDRSZ + strlen(canon));
	SET_VARSIZE(result, VARHDRSZ + strlen(canon));
	memcpy(VARDATA(result), canon, strlen(canon));
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}

/* add a spelling of the subject to the JSON array being built, once */
static void
fg_add_spelling(StringInfo buf, List **seen, const char *s)
{
	ListCell   *lc;

	/* nothing is stored under a longer one ('1e300' is 301 digits in a numeric column) */
	if (strlen(s) > CV_SUBJECT_MAX)
		return;
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
 * The refusal of a walk whose tables changed during it: a statement
 * analysed again now would find its tables by name, maybe another object
 * (a view calling a function), and run it as the recorded table's owner.
 */
static void
fg_refuse_changed(void)
{
	bool		erasure = fg_walk_kind == NULL || strcmp(fg_walk_kind, "erasure") == 0;

	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("the tables of the %s changed during it", erasure ? "erasure" : "export"),
			 errdetail("A table of the subject reach, the subject registry or the labels changed while the %s ran.",
					   erasure ? "erasure" : "export"),
			 errhint(erasure ? "Nothing was erased. Run forget_subject again." :
					 "Run export_subject again.")));
}

/*
 * Before a statement of table t is analysed again in the middle of a walk
 * (it was invalidated: a GRANT on the table, an ANALYZE, a change of
 * anything it depends on) or a new one is prepared: analysis finds the
 * table by the name the statement gives, so that name must still be the
 * same table (OID), of the same kind and owner, else a table dropped and
 * replaced by a view (or by another table) would be read or changed as the
 * recorded owner.  A statement naming a type or an operator outside
 * pg_catalog and the extension (a foreign key's own type) is not analysed
 * again once anything of the walk changed: whoever owns that name could
 * have replaced it.  Harmless invalidations no longer refuse the walk.
 */
static void
fg_check_table(FgTable *t, bool analysed_again)
{
	Oid			nsp;
	HeapTuple	tup;
	bool		same = false;

	if (fg_walk_kind == NULL)
		fg_refuse_changed();
	if (!t->reanalysable && (analysed_again || fg_gen != fg_walk_gen))
		fg_refuse_changed();
	nsp = get_namespace_oid(t->nspname, true);
	if (OidIsValid(nsp) && get_relname_relid(t->relname, nsp) == t->relid)
	{
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(t->relid));
		if (HeapTupleIsValid(tup))
		{
			Form_pg_class c = (Form_pg_class) GETSTRUCT(tup);

			same = c->relkind == t->relkind && c->relowner == t->owner;
			ReleaseSysCache(tup);
		}
	}
	if (!same)
		fg_refuse_changed();
}

/* every kept statement of the plan is still valid (none would be analysed again) */
static bool
fg_plans_valid(void)
{
	int			i;

	for (i = 0; i < fg_n; i++)
	{
		FgTable    *t = &fg_tables[i];

		if ((t->keys_plan && !SPI_plan_is_valid(t->keys_plan)) ||
			(t->act_plan && !SPI_plan_is_valid(t->act_plan)) ||
			(t->count_plan && !SPI_plan_is_valid(t->count_plan)) ||
			(t->rows_plan && !SPI_plan_is_valid(t->rows_plan)) ||
			(t->seal_plan && !SPI_plan_is_valid(t->seal_plan)))
			return false;
	}
	return true;
}

static void fg_rows_sql(FgTable *t);
static void fg_refuse_forced_citus(FgTable *t);

/*
 * The start of a walk (kind: "erasure" or "export"), inside SPI, as the
 * caller, before any table owner's code runs: the plan built again when
 * the catalog, the registry or the labels changed, every table of the
 * reach locked (mode: RowExclusiveLock for the erasure, AccessShareLock for
 * the export) so that DDL of other sessions waits for the end of the
 * transaction, the export's statements prepared, and the validity checked
 * again after the locks (a change committed while waiting for them is seen
 * then; the plan is built again).  A plan built while every table it found
 * was locked already is taken even if an invalidation came meanwhile (a
 * GRANT takes no lock; a change of the registry or the labels is
 * concurrent with the walk either way): a loop of harmless invalidations
 * must not keep every walk from starting.  From here on fg_exec checks a
 * statement that would be analysed again (fg_check_table).
 */
static void
fg_begin_walk(const char *kind, LOCKMODE mode)
{
	bool		export = strcmp(kind, "export") == 0;
	int			attempt;
	int			i;
	Oid		   *locked = palloc(sizeof(Oid));
	int			nlocked = 0;

	fg_walk_kind = NULL;
	for (attempt = 0;; attempt++)
	{
		bool		under_locks = false;

		if (!fg_valid || fg_children_changed() || !fg_plans_valid())
		{
			fg_build();
			under_locks = attempt > 0;
			for (i = 0; i < fg_n && under_locks; i++)
				under_locks = fg_pos(locked, nlocked, fg_tables[i].relid) >= 0;
		}
		locked = repalloc(locked, sizeof(Oid) * (nlocked + fg_n + 1));
		for (i = 0; i < fg_n; i++)
		{
			LockRelationOid(fg_tables[i].relid, mode);
			if (fg_pos(locked, nlocked, fg_tables[i].relid) < 0)
				locked[nlocked++] = fg_tables[i].relid;
		}
		if (export)
		{
			/* prepared as the export's own role, as the plan was, before any owner's code runs */
			for (i = 0; i < fg_n; i++)
			{
				FgTable    *t = &fg_tables[i];

				if (t->rows_plan != NULL)
					continue;
				if (t->rows_sql == NULL)
					fg_rows_sql(t);
				/* on a Citus table a custom plan (fg_prepare) */
				t->rows_plan = fg_prepare(t->relid, t->rows_sql, t->nparams, t->types);
			}
		}
		if (under_locks || (fg_valid && !fg_children_changed() && fg_plans_valid()))
			break;
		if (attempt >= 2)
		{
			fg_walk_kind = kind;
			fg_refuse_changed();
		}
	}

	/*
	 * The Citus tables: neither the coordinator's table nor any of its
	 * shards (asked as the table's owner) may put that owner under FORCE
	 * ROW LEVEL SECURITY; set by hand on a shard, the coordinator's table
	 * does not show it.  Before any statement runs, so nothing was changed
	 * yet.
	 */
	for (i = 0; i < fg_n; i++)
	{
		fg_refuse_forced_citus(&fg_tables[i]);
		CvCitusRefuseForcedShards(fg_tables[i].relid, fg_tables[i].owner,
								  export ? "export_subject" : "forget_subject");
	}
	fg_walk_gen = fg_gen;
	fg_walk_kind = kind;
}

/*
 * A Citus table whose owner is under its FORCE ROW LEVEL SECURITY: refused.
 * Here the erasure's statements do not apply the owner's forced policies
 * (SECURITY_NOFORCE_RLS, fg_exec), but Citus runs them again on the workers,
 * per shard, in sessions of their own where that flag does not reach: there
 * the owner's policies either hid the subject's rows (forget_subject left
 * them and its receipt said erased) or, with row security off, failed on the
 * shard.  An erasure or export that cannot see every row of the subject must
 * not run at all.
 */
static void
fg_refuse_forced_citus(FgTable *t)
{
	HeapTuple	tup;
	bool		forced;
	const char *name;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(t->relid));
	if (!HeapTupleIsValid(tup))
		return;					/* fg_check_unchanged's business */
	forced = ((Form_pg_class) GETSTRUCT(tup))->relrowsecurity &&
		((Form_pg_class) GETSTRUCT(tup))->relforcerowsecurity;
	ReleaseSysCache(tup);
	if (!forced || superuser_arg(t->owner) || has_bypassrls_privilege(t->owner) ||
		!CvCitusTable(t->relid))
		return;
	name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(t->relid)),
									  get_rel_name(t->relid));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot reach every row of the subject in Citus table %s: its owner is under FORCE ROW LEVEL SECURITY",
					name),
			 errdetail("On the Citus workers the owner's own row security policies would apply to the erasure's and the export's statements on the shards."),
			 errhint("ALTER TABLE %s NO FORCE ROW LEVEL SECURITY (the policies still apply to every other role), then run it again.",
					 name)));
}

/*
 * Run one prepared statement of table t as the table's owner, inside a
 * security-restricted operation with pinned settings (CvBecomeTableOwner:
 * search_path, row security off, and the output settings, so the keys a
 * parent gives its children as text read back as the same values whatever
 * the caller set).  Consecutive statements of one owner share one switch:
 * what that owner's code changes there reaches only that owner's own
 * statements (fg_end_owner ends it).
 */
static int
fg_exec(FgTable *t, SPIPlanPtr plan, Datum *values, const char *nulls)
{
	int			rc;

	if (fg_walk_kind == NULL)
		fg_refuse_changed();
	if (!SPI_plan_is_valid(plan))
		fg_check_table(t, true);
	fg_refuse_forced_citus(t);
	if (fg_cur_owner != t->owner)
	{
		if (OidIsValid(fg_cur_owner))
			CvRestoreCaller(&fg_sw);
		fg_cur_owner = InvalidOid;
		CvBecomeTableOwner(t->owner, &fg_sw);
		fg_cur_owner = t->owner;

		/*
		 * As the referential integrity triggers do: the owner's FORCE ROW
		 * LEVEL SECURITY does not apply to the erasure's statements (its
		 * own policies would hide rows of the subject from it, or, with row
		 * security off, fail every erasure).  Only these statements and the
		 * owner's code they fire; undone with the switch.
		 */
		{
			Oid			uid;
			int			sec;

			GetUserIdAndSecContext(&uid, &sec);
			SetUserIdAndSecContext(uid, sec | SECURITY_NOFORCE_RLS);
		}
	}
	rc = SPI_execute_plan(plan, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "erasure statement failed: %s", SPI_result_code_string(rc));
	return rc;
}

/* back to the caller after fg_exec */
static void
fg_end_owner(void)
{
	if (OidIsValid(fg_cur_owner))
		CvRestoreCaller(&fg_sw);
	fg_cur_owner = InvalidOid;
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

/* the error for a table whose change the calling role holds no privilege for */
static void
fg_refuse_privilege(FgTable *t, bool has_rows)
{
	const char *priv = t->treat == 'd' ? "DELETE" : t->treat == 'a' ? "UPDATE" : "SELECT";

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for table %s",
					DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(t->relid)))),
			 has_rows ?
			 errdetail("forget_subject changes a table holding rows of the subject as its owner, for roles with the %s privilege on it.", priv) :
			 errdetail("forget_subject changes every table of the subject reach as its owner, for roles with the %s privilege on it.", priv),
			 errhint("Nothing was erased.")));
}

/*
 * Whether the calling role holds the privilege on t, or on a partitioned
 * table t is a partition of (through which it may change the rows: a
 * partition in the reach by a foreign key of its own has no grants of its
 * own as a rule)
 */
static bool
fg_aclcheck(FgTable *t, Oid caller, AclMode mode)
{
	ListCell   *la;

	if (pg_class_aclcheck(t->relid, caller, mode) == ACLCHECK_OK)
		return true;
	if (!get_rel_relispartition(t->relid))
		return false;
	foreach(la, get_partition_ancestors(t->relid))
		if (pg_class_aclcheck(lfirst_oid(la), caller, mode) == ACLCHECK_OK)
			return true;
	return false;
}

/* the calling role holds the privilege the change of t needs (DELETE, UPDATE to anonymize, SELECT to count) */
static void
fg_check_privilege(FgTable *t, Oid caller)
{
	AclMode		mode = t->treat == 'd' ? ACL_DELETE : t->treat == 'a' ? ACL_UPDATE : ACL_SELECT;

	if (!fg_aclcheck(t, caller, mode))
		fg_refuse_privilege(t, false);
}

/*
 * The keys each table's rows of the subject give its children, parents
 * first, each table read as its owner (fg_exec): per table the parameters
 * of its statements (tparams, tnulls: the subject at depth 0, the parents'
 * keys below) and whether it can hold rows of the subject at all (empty:
 * the subject is no value of its subject column's type, or no parent row
 * gave a key).  spell/seen gather the subject's spellings (forget_subject).
 */
static void
fg_read_keys(const char *subject, Datum subject_datum, StringInfo spell, List **seen,
			 Datum **keys, bool **keynull, bool *empty, Datum **tparams, char **tnulls)
{
	int			i;

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
				fg_spellings(spell, seen, subject, t->subject_type, canon);
			/* the value as its type prints it ('60' for '6e1' in a bigint column), else as given */
			params[0] = canon != NULL ? CStringGetTextDatum(canon) : subject_datum;
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
}

/*
 * The walk of one erasure, inside SPI with the plan built: every table of
 * the reach, keys read parents first, the kept tables a cascade would reach
 * checked, the caller's privilege checked, then the changes, children first,
 * each statement as the table's owner.  *tables: the counts per table as a
 * JSON object {"schema.table": {"deleted", "anonymized", "kept"}};
 * *not_reached: a JSON array of the labelled tables no registered table
 * reaches; spell/seen gather the spellings of the subject (as given, in each
 * subject column's type it is a value of, zero-padded, uuid variants).
 */
/*
 * The spellings the rows the last erasure kept (retention action 'shred')
 * are sealed under, each with the table it came from (cv_forget_subject).
 */
static List *fg_sealed = NIL;
static List *fg_sealed_rels = NIL;

static void
fg_walk(const char *subject, Datum subject_datum, Oid caller, StringInfo spell, List **seen,
		char **tables, char **not_reached)
{
	Datum	  **keys;
	bool	  **keynull;
	bool	   *empty;
	Datum	  **tparams;
	char	  **tnulls;
	int64	   *counts;
	StringInfoData out;
	StringInfoData nr;
	int			i;

	keys = palloc0(sizeof(Datum *) * Max(fg_n, 1));
	keynull = palloc0(sizeof(bool *) * Max(fg_n, 1));
	empty = palloc0(sizeof(bool) * Max(fg_n, 1));
	counts = palloc0(sizeof(int64) * Max(fg_n, 1));
	tparams = palloc0(sizeof(Datum *) * Max(fg_n, 1));
	tnulls = palloc0(sizeof(char *) * Max(fg_n, 1));
	fg_add_spelling(spell, seen, subject);

	/* an anonymized table needs PII columns to clear */
	for (i = 0; i < fg_n; i++)
		if (fg_tables[i].treat == 'a' && fg_tables[i].act_plan == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s has no PII-labelled columns to anonymize",
							DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(fg_tables[i].relid)))),
					 errhint("Label them first: SECURITY LABEL FOR customer_vault ON COLUMN t.c IS 'pii'.")));

	/*
	 * The calling role's privilege on every table of the plan, before
	 * anything is read: a refusal then tells nothing about the subject
	 * (whether it has rows in a table the role may not change).  A table
	 * that joined the reach only through a foreign key towards a table of
	 * another owner (REFERENCES is all it takes) is checked below, only
	 * where it holds rows of the subject: it must not stop every erasure.
	 */
	for (i = 0; i < fg_n; i++)
	{
		FgTable    *t = &fg_tables[i];

		if (!t->refonly)
			fg_check_privilege(t, caller);
	}

	/* the keys, parents first, each table read as its owner */
	fg_read_keys(subject, subject_datum, spell, seen, keys, keynull, empty, tparams, tnulls);

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

		if (empty[k])
			continue;
		if (t->refonly && !fg_aclcheck(t, caller, mode))
		{
			if (t->count_plan == NULL)
			{
				/* prepared as the erasure's own role, as the plan was, if nothing changed */
				fg_end_owner();
				fg_check_table(t, false);
				t->count_plan = fg_prepare(t->relid, fg_count_sql(t), t->nparams,
										   fg_param_types(t));
			}
			fg_exec(t, t->count_plan, tparams[k], tnulls[k]);
			if (fg_count() == 0)
				continue;
			fg_refuse_privilege(t, true);
		}
		fg_exec(t, t->act_plan, tparams[k], tnulls[k]);
		counts[k] = (t->treat == 'k') ? fg_count() : (int64) SPI_processed;
		if (counts[k] > 0 && t->seal_plan != NULL)
		{
			uint64		r;

			fg_exec(t, t->seal_plan, tparams[k], tnulls[k]);
			for (r = 0; r < SPI_processed; r++)
			{
				char	   *v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);

				if (v == NULL)
					continue;
				fg_sealed = lappend(fg_sealed, v);
				fg_sealed_rels = lappend_oid(fg_sealed_rels, t->relid);
			}
		}
	}

	fg_end_owner();

	/* the counts, in the order of change */
	initStringInfo(&out);
	appendStringInfoString(&out, "{");
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
	appendStringInfoChar(&out, '}');
	initStringInfo(&nr);
	appendStringInfoChar(&nr, '[');
	for (i = 0; i < fg_nunreached; i++)
	{
		if (i > 0)
			appendStringInfoString(&nr, ", ");
		escape_json(&nr, fg_unreached_names[i]);
	}
	appendStringInfoChar(&nr, ']');
	*tables = out.data;
	*not_reached = nr.data;
}

/* the walk's state after an error: nothing runs, nobody is switched to */
static void
fg_reset_after_error(void)
{
	fg_busy = false;
	fg_building = false;
	fg_build_rels = NULL;
	fg_build_nrel = 0;
	fg_cur_owner = InvalidOid;
	fg_walk_kind = NULL;
	fg_hashes = NIL;
	fg_sealed = NIL;
	fg_sealed_rels = NIL;
	fg_hold_spellings = NIL;
}

/*
 * customer_vault._forget_walk(subject text, caller oid) RETURNS text: the
 * erasure of one subject in every table of the reach; as JSON, the counts
 * per table {"tables": {...}, "not_reached": [...], "spellings": [...]}.
 * Executable by nobody (forget_subject runs the walk itself); kept for the
 * tests and the curious superuser.
 */
Datum
cv_forget_walk(PG_FUNCTION_ARGS)
{
	char	   *subject;
	Oid			caller;
	Datum		subject_datum;
	StringInfoData out;
	StringInfoData spell;
	List	   *seen = NIL;
	char	   *tables;
	char	   *not_reached;
	text	   *result;

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
		/* the plan, built again when the catalog, the registry or the labels changed; the tables locked */
		fg_begin_walk("erasure", RowExclusiveLock);
		initStringInfo(&spell);
		fg_walk(subject, subject_datum, caller, &spell, &seen, &tables, &not_reached);
		initStringInfo(&out);
		appendStringInfo(&out, "{\"tables\": %s, \"not_reached\": %s, \"spellings\": [%s]}",
						 tables, not_reached, spell.data);
		fg_walk_kind = NULL;
		fg_busy = false;
	}
	PG_CATCH();
	{
		fg_reset_after_error();
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
 * The statement export_subject reads a table's rows of the subject with:
 * every column as jsonb text (to_jsonb of the row), and the row context of
 * each protected column as a jsonb object (NULL without protected columns;
 * an inheritance child's are its own and its ancestors', whose columns it
 * inherits).  The WHERE clause and
 * parameters are the erasure's.  protect_column changes the table (a
 * trigger, a rewrite) and a protected_columns row goes only with its table
 * or column (DDL), so the relcache invalidation that makes the plan stale
 * covers the protected columns too.
 */
static void
fg_rows_sql(FgTable *t)
{
	Oid			argt = OIDOID;
	Datum		arg = ObjectIdGetDatum(t->relid);
	char	   *ctx = NULL;
	Datum		v;
	bool		isnull;

	/*
	 * The protected columns of the table and of its ancestors (the columns
	 * it inherits are sealed as theirs: a column of its own protected too
	 * must not hide them), the nearest definition of a column first.
	 */
	if (SPI_execute_with_args("WITH RECURSIVE anc(r, lvl) AS ("
							  " SELECT $1, 0"
							  " UNION ALL SELECT i.inhparent, a.lvl OPERATOR(pg_catalog.+) 1"
							  " FROM pg_catalog.pg_inherits i JOIN anc a ON i.inhrelid OPERATOR(pg_catalog.=) a.r"
							  " WHERE a.lvl OPERATOR(pg_catalog.<) 64)"
							  " SELECT pg_catalog.string_agg(pg_catalog.format('%L, %s', pc.column_name,"
							  " CASE WHEN pc.context_column IS NULL THEN pg_catalog.quote_literal(pc.binding)"
							  " ELSE pg_catalog.format('customer_vault._row_context(%L, t.%I)', pc.binding, pc.context_column) END),"
							  " ', ' ORDER BY pc.column_name)"
							  " FROM (SELECT DISTINCT ON (p.column_name) p.column_name, p.context_column, p.binding"
							  " FROM customer_vault.protected_columns p JOIN anc ON p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) anc.r"
							  " ORDER BY p.column_name, anc.lvl) pc",
							  1, &argt, &arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "the protected columns of table %u could not be read", t->relid);
	v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		ctx = TextDatumGetCString(v);
	t->pc_rel = t->relid;
	t->rows_sql = MemoryContextStrdup(fg_cxt,
									  psprintf("SELECT pg_catalog.to_jsonb(t)::pg_catalog.text, %s%s%s FROM %s WHERE %s",
											   ctx ? "pg_catalog.jsonb_build_object(" : "NULL::pg_catalog.text",
											   ctx ? ctx : "", ctx ? ")::pg_catalog.text" : "",
											   t->from_sql, t->cond_sql));
}

/*
 * customer_vault._export_walk(subject text) RETURNS TABLE(relid oid, depth
 * integer, nparams integer, rows_sql text, rows text[], protected_from oid,
 * retention_from oid):
 * export_subject's
 * read of every table of the subject reach (the erasure's plan: registered
 * tables, their inheritance children, the tables reaching them through
 * foreign keys), keys read parents first, every statement as the table's
 * owner inside a security-restricted operation, kept prepared per session.
 * rows: per row of the subject its jsonb text and the row context of its
 * protected columns (as jsonb text or NULL), pair after pair; empty where
 * the table holds none; protected_from: the table whose protected_columns
 * rows apply, with its ancestors' (the table itself); retention_from: the
 * table whose retention policy the erasure applies to these rows (its own,
 * or an inheritance child's parent's; NULL: none, deleted).
 * Executable by nobody: _export_collect (SECURITY DEFINER) calls it.
 */
Datum
cv_export_walk(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *subject;
	Datum		subject_datum;
	StringInfoData spell;
	List	   *seen = NIL;
	Datum	  **keys;
	bool	  **keynull;
	bool	   *empty;
	Datum	  **tparams;
	char	  **tnulls;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subject must not be null")));
	if (fg_busy)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("an export cannot run inside an erasure")));
	subject_datum = PG_GETARG_DATUM(0);
	subject = TextDatumGetCString(subject_datum);
	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	fg_busy = true;
	PG_TRY();
	{
		/* the plan, built again when the catalog, the registry or the labels changed; the tables locked */
		fg_begin_walk("export", AccessShareLock);
		keys = palloc0(sizeof(Datum *) * Max(fg_n, 1));
		keynull = palloc0(sizeof(bool *) * Max(fg_n, 1));
		empty = palloc0(sizeof(bool) * Max(fg_n, 1));
		tparams = palloc0(sizeof(Datum *) * Max(fg_n, 1));
		tnulls = palloc0(sizeof(char *) * Max(fg_n, 1));
		initStringInfo(&spell);
		fg_read_keys(subject, subject_datum, &spell, &seen, keys, keynull, empty, tparams, tnulls);
		for (i = 0; i < fg_n; i++)
		{
			FgTable    *t = &fg_tables[i];
			Datum		values[7];
			bool		nulls[7] = {false, false, false, false, false, false, false};
			Datum	   *elems = NULL;
			bool	   *enulls = NULL;
			int			nelems = 0;
			MemoryContext old;

			/* prepared by fg_begin_walk, before any owner's code ran */
			if (t->rows_plan == NULL)
				fg_refuse_changed();
			if (!empty[i])
			{
				SPITupleTable *tt;
				uint64		r;

				fg_exec(t, t->rows_plan, tparams[i], tnulls[i]);
				tt = SPI_tuptable;
				if (SPI_processed > (uint64) (MaxAllocSize / sizeof(Datum) / 2))
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("the subject has too many rows in table %s",
									DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(t->relid))))));
				nelems = (int) (2 * SPI_processed);
				elems = palloc(sizeof(Datum) * Max(nelems, 1));
				enulls = palloc(sizeof(bool) * Max(nelems, 1));
				for (r = 0; r < SPI_processed; r++)
				{
					int			c;

					for (c = 0; c < 2; c++)
					{
						bool		isnull;
						Datum		d = SPI_getbinval(tt->vals[r], tt->tupdesc, c + 1, &isnull);

						enulls[2 * r + c] = isnull;
						elems[2 * r + c] = isnull ? (Datum) 0 : d;
					}
				}
			}
			old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
			values[0] = ObjectIdGetDatum(t->relid);
			values[1] = Int32GetDatum(t->depth);
			values[2] = Int32GetDatum(t->nparams);
			values[3] = CStringGetTextDatum(t->rows_sql);
			if (nelems == 0)
				values[4] = PointerGetDatum(construct_empty_array(TEXTOID));
			else
			{
				int			dims[1] = {nelems};
				int			lbs[1] = {1};

				values[4] = PointerGetDatum(construct_md_array(elems, enulls, 1, dims, lbs, TEXTOID, -1, false,
															   TYPALIGN_INT));
			}
			values[5] = ObjectIdGetDatum(t->pc_rel);
			values[6] = ObjectIdGetDatum(t->ret_from);
			nulls[6] = !OidIsValid(t->ret_from);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			MemoryContextSwitchTo(old);
		}
		fg_end_owner();
		fg_walk_kind = NULL;
		fg_busy = false;
	}
	PG_CATCH();
	{
		fg_reset_after_error();
		PG_RE_THROW();
	}
	PG_END_TRY();
	SPI_finish();
	return (Datum) 0;
}

/* a subject read in every type subjects are compared in */
typedef struct FgSubject
{
	const char *text;
	int			n;
	Oid			types[FG_MAX_TYPES];
	bool		ok[FG_MAX_TYPES];
	Datum		val[FG_MAX_TYPES];
} FgSubject;

/* read the subject in each compared type (the plan's) */
static void
fg_subject_init(FgSubject *fs, const char *subject)
{
	int			i;

	fs->text = subject;
	fs->n = fg_nmatch;
	for (i = 0; i < fg_nmatch; i++)
	{
		fs->types[i] = fg_match_types[i];
		fs->ok[i] = fg_read(subject, fs->types[i], &fs->val[i]);
	}
}

/*
 * Whether another text may name the subject in some table: equal as text,
 * or equal as values of the type of some registered subject column or
 * retention policy's subject column ('42' and '042' in a bigint column, '60'
 * and '6e1' in a numeric or a bigint one, 'a1' and 'a1 ' in a char(n) one).
 * Holds are matched so (a hold on a spelling keeps every row it may name).
 */
static bool
fg_same_value(const FgSubject *fs, const char *other)
{
	int			i;

	if (strcmp(other, fs->text) == 0)
		return true;
	for (i = 0; i < fs->n; i++)
	{
		Datum		v;

		if (fs->ok[i] && fg_read(other, fs->types[i], &v) && fg_equal(fs->types[i], fs->val[i], v))
			return true;
	}
	return false;
}

/*
 * Whether another text names the same subject for every registered type:
 * equal as text, or, when no subject column compares as text, a value of
 * exactly the types the subject is a value of, and equal to it in each
 * ('60', '6e1' and '60.0' next to bigint and numeric columns; not 'bob'
 * for 'bob ' next to a char(n) and a text column, where the text column
 * holds them as two subjects).  Consents and subject keys are withdrawn
 * and shredded under such spellings only: never another subject's.
 */
static bool
fg_same_subject(const FgSubject *fs, const char *other)
{
	bool		any = false;
	int			i;

	if (strcmp(other, fs->text) == 0)
		return true;
	if (fg_text_compared)
		return false;
	for (i = 0; i < fs->n; i++)
	{
		Datum		v;
		bool		ok = fg_read(other, fs->types[i], &v);

		if (ok != fs->ok[i])
			return false;
		if (!ok)
			continue;
		if (!fg_equal(fs->types[i], fs->val[i], v))
			return false;
		any = true;
	}
	return any;
}

/* the range of texts (C collation) that start with prefix */
static void
fg_prefix_range(List **lo, List **hi, const char *prefix)
{
	char	   *h = pstrdup(prefix);
	int			len = strlen(h);

	/* prefixes are ASCII here: the last byte plus one bounds them */
	Assert(len > 0 && (unsigned char) h[len - 1] < 0x7f);
	h[len - 1]++;
	*lo = lappend(*lo, pstrdup(prefix));
	*hi = lappend(*hi, h);
}

/* the range [l, h) */
static void
fg_range(List **lo, List **hi, const char *l, const char *h)
{
	*lo = lappend(*lo, pstrdup(l));
	*hi = lappend(*hi, pstrdup(h));
}

/*
 * Where other spellings of the subject can be among the consents (ranges of
 * consent_state's primary key, in its C collation), for each compared type
 * the subject is a value of; exact: spellings to look up as they are.
 *   integers and numeric: every text that reads as the same number starts
 *     with a blank, a sign, a point or a zero (all below '1'), or with the
 *     number's significant digits S (trailing zeros dropped): S, then zeros,
 *     then no digit ('60', '6e1', '600e-1', '60.0', '6_0' for 60), or a
 *     point or an underscore inside S ('4.2e1', '4_2' for 42); more zeros
 *     than the value has plus two are taken as one range
 *   uuid: the first four hex digits in either case, with or without a brace
 *   char(n): the subject without trailing blanks, then blanks
 * Each candidate is then compared as the type compares (fg_same).
 */
static void
fg_consent_ranges(const FgSubject *fs, List **lo, List **hi, List **exact)
{
	bool		low_done = false;
	int			i;

	for (i = 0; i < fs->n; i++)
	{
		Oid			typ = fs->types[i];

		if (!fs->ok[i])
			continue;
		if (typ == INT2OID || typ == INT4OID || typ == INT8OID || typ == NUMERICOID)
		{
			char	   *out = fg_output(typ, fs->val[i]);
			StringInfoData d;
			char	   *sdig;
			int			slen;
			int			tz = 0;
			int			m;
			int			k;
			const char *c;

			if (!low_done)
			{
				fg_range(lo, hi, "", "1");
				low_done = true;
			}
			/* the significant digits, and the zeros after them */
			initStringInfo(&d);
			for (c = out; *c; c++)
				if (*c >= '0' && *c <= '9')
				{
					if (d.len > 0 || *c != '0')
						appendStringInfoChar(&d, *c);
				}
				else if (*c != '-' && *c != '.')
					break;
			if (*c != '\0')
				continue;		/* NaN, Infinity: as given only */
			while (d.len > 0 && d.data[d.len - 1] == '0')
			{
				d.data[--d.len] = '\0';
				tz++;
			}
			if (d.len == 0)
				continue;		/* zero: every spelling is below '1' */
			sdig = d.data;
			slen = d.len;

			/*
			 * No spelling of the subject is stored longer than
			 * CV_SUBJECT_MAX bytes: the zeros are counted up to there only
			 * (forget_subject('1e131071') made 131074 ranges of up to
			 * 131073 bytes each, tens of GB).
			 */
			if (tz + 2 > CV_SUBJECT_MAX - slen)
				tz = Max(CV_SUBJECT_MAX - slen - 2, 0);
			for (m = 0; m <= tz + 2; m++)
			{
				StringInfoData z;

				CHECK_FOR_INTERRUPTS();
				initStringInfo(&z);
				appendStringInfoString(&z, sdig);
				for (k = 0; k < m; k++)
					appendStringInfoChar(&z, '0');
				fg_range(lo, hi, z.data, psprintf("%s0", z.data));
				fg_range(lo, hi, psprintf("%s:", z.data), psprintf("%.*s%c", z.len - 1, z.data, z.data[z.len - 1] + 1));
				if (m == tz + 2)
				{
					appendStringInfoChar(&z, '0');
					fg_prefix_range(lo, hi, z.data);
				}
			}
			for (k = 1; k < slen; k++)
			{
				CHECK_FOR_INTERRUPTS();
				fg_range(lo, hi, psprintf("%.*s.", k, sdig), psprintf("%.*s/", k, sdig));
				fg_range(lo, hi, psprintf("%.*s_", k, sdig), psprintf("%.*s`", k, sdig));
			}
		}
		else if (typ == UUIDOID)
		{
			char	   *out = fg_output(typ, fs->val[i]);
			int			mask;

			/* every case of the first four hex digits */
			for (mask = 0; mask < 16; mask++)
			{
				char		p4[6];
				int			b;
				bool		dup = false;

				for (b = 0; b < 4; b++)
				{
					p4[b] = out[b];
					if (mask & (1 << b))
					{
						if (!isalpha((unsigned char) out[b]))
							dup = true;
						p4[b] = pg_toupper((unsigned char) out[b]);
					}
				}
				if (dup)
					continue;
				p4[4] = '\0';
				fg_prefix_range(lo, hi, p4);
				fg_prefix_range(lo, hi, psprintf("{%s", p4));
			}
		}
		else if (typ == BPCHAROID)
		{
			char	   *base = pstrdup(fs->text);
			int			len = strlen(base);

			while (len > 0 && base[len - 1] == ' ')
				base[--len] = '\0';
			*exact = lappend(*exact, base);
			fg_range(lo, hi, psprintf("%s ", base), psprintf("%s!", base));
		}
	}
}

/*
 * The ranges of a C-collated index on subjects where the subject's
 * spellings can be (fg_same_subject decides on each candidate): the
 * subject itself, and where no subject column compares as text, the ranges
 * of fg_consent_ranges.
 */
static void
fg_candidate_ranges(const FgSubject *fs, List **lo, List **hi)
{
	List	   *exact = list_make1(pstrdup(fs->text));
	ListCell   *lc;

	if (!fg_text_compared)
		fg_consent_ranges(fs, lo, hi, &exact);
	/* a text alone: [s, s || chr(1)), nothing else sorts in between */
	foreach(lc, exact)
		fg_range(lo, hi, (char *) lfirst(lc), psprintf("%s\x01", (char *) lfirst(lc)));
}

/*
 * The spellings of the subject found in an extension table's index on its
 * subject column (C collation), scanned over the candidate ranges, appended
 * to *out: those that name the same subject (fg_same_subject) and, when
 * state_col is given, whose state is not 'destroyed'.
 */
static void
fg_indexed_spellings(const FgSubject *fs, const char *relname, const char *idxname,
					 const char *state_col, List **out)
{
	List	   *lo = NIL;
	List	   *hi = NIL;
	ListCell   *lc;
	ListCell   *lh;
	Oid			idx;
	Relation	rel;
	TupleDesc	desc;
	AttrNumber	a_subject;
	AttrNumber	a_state = InvalidAttrNumber;
	Snapshot	snap;

	fg_candidate_ranges(fs, &lo, &hi);
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetLatestSnapshot());
	rel = fg_open_ext(relname, &idx, idxname);
	desc = RelationGetDescr(rel);
	a_subject = fg_attnum(rel, "subject");
	if (state_col != NULL)
		a_state = fg_attnum(rel, state_col);
	forboth(lc, lo, lh, hi)
	{
		ScanKeyData key[2];
		SysScanDesc scan;
		HeapTuple	tup;

		ScanKeyInit(&key[0], a_subject, BTGreaterEqualStrategyNumber, F_TEXT_GE,
					CStringGetTextDatum((char *) lfirst(lc)));
		ScanKeyInit(&key[1], a_subject, BTLessStrategyNumber, F_TEXT_LT,
					CStringGetTextDatum((char *) lfirst(lh)));
		CHECK_FOR_INTERRUPTS();
		scan = systable_beginscan(rel, idx, true, snap, 2, key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			char	   *sp;

			CHECK_FOR_INTERRUPTS();
			sp = fg_getstr(tup, desc, a_subject);
			if (sp == NULL || !fg_same_subject(fs, sp))
				continue;
			if (state_col != NULL)
			{
				char	   *st = fg_getstr(tup, desc, a_state);

				if (st == NULL || strcmp(st, "destroyed") == 0)
					continue;
			}
			*out = lappend(*out, sp);
		}
		systable_endscan(scan);
	}
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snap);
}

/*
 * The spellings of the subject that have a live subject key (data_keys' index
 * of live keys by subject): a protected column seals under (column)::text,
 * '60.00' for a numeric 60.00, which no list of spellings made in advance
 * holds.
 */
static void
fg_key_spellings(const FgSubject *fs, List **out)
{
	fg_indexed_spellings(fs, "data_keys", "data_keys_subject_live_key", "state", out);
}

/* whether a spelling has a live subject key (data_keys' index of live keys by subject) */
static bool
fg_live_key(const char *spelling)
{
	Oid			idx;
	Relation	rel;
	TupleDesc	desc;
	AttrNumber	a_subject;
	AttrNumber	a_state;
	Snapshot	snap;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		live = false;

	CommandCounterIncrement();
	snap = RegisterSnapshot(GetLatestSnapshot());
	rel = fg_open_ext("data_keys", &idx, "data_keys_subject_live_key");
	desc = RelationGetDescr(rel);
	a_subject = fg_attnum(rel, "subject");
	a_state = fg_attnum(rel, "state");
	ScanKeyInit(&key, a_subject, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(spelling));
	scan = systable_beginscan(rel, idx, true, snap, 1, &key);
	while (!live && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		char	   *ks = fg_getstr(tup, desc, a_subject);
		char	   *st = fg_getstr(tup, desc, a_state);

		live = ks != NULL && st != NULL && strcmp(st, "destroyed") != 0 && strcmp(ks, spelling) == 0;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snap);
	return live;
}

/*
 * The spellings of the subject evidence_subjects names (the plain subject of
 * hold and ledger entries of hash version 2): a hold placed on '+60' names
 * the subject 60 under a spelling neither the walk, nor a consent, nor a key
 * gives, and must not survive its erasure.
 */
static void
fg_evidence_spellings(const FgSubject *fs, List **out)
{
	fg_indexed_spellings(fs, "evidence_subjects", "evidence_subjects_subject_idx", NULL, out);
}

/* a List of C strings as a text[] */
static Datum
fg_text_array(List *l)
{
	Datum	   *el = palloc(sizeof(Datum) * Max(list_length(l), 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, l)
		el[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(el, n, TEXTOID, -1, false, TYPALIGN_INT));
}

static void fg_hold_scan(const FgSubject *fs);


/* the first hold standing on the subject: refused, naming it */
static void
fg_check_holds(const FgSubject *fs)
{

	/*
	 * A hold placed or released concurrently waits for this transaction (the
	 * same lock place_legal_hold and release_legal_hold take), so none slips
	 * in between the check and the erasure.
	 */
	if (SPI_execute_plan(CvSavedPlan(&fg_plan_holdlock,
									 "SELECT FROM customer_vault.evidence_heads h"
									 " WHERE h.chain OPERATOR(pg_catalog.=) 'legal_hold_events' FOR UPDATE",
									 0, NULL), NULL, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the legal hold chain");
	if (SPI_processed == 0 &&
		SPI_execute_plan(CvSavedPlan(&fg_plan_holdinit,
									 "SELECT customer_vault._evidence_next('legal_hold_events')",
									 0, NULL), NULL, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the legal hold chain");
	fg_hold_scan(fs);
}

/* by value */
static int
fg_int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The plain subject of a hold entry of hash version 2 (0.5.0: the entry
 * stores the subject's keyed hash; evidence_subjects names it), or NULL.
 * The row is authenticated: only the extension's owner can write
 * evidence_subjects, but a row whose subject does not hash to the entry's
 * hash (written behind the extension's back, or restored from an altered
 * dump) would move the hold to another subject; it is ignored with a
 * warning (the hold still stands on the spelling whose hash it stores:
 * fg_hold_scan compares the hashes first).
 */
static char *
fg_hold_subject(HeapTuple tup, TupleDesc desc, AttrNumber a_subject_hash, int64 hold_id)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		isnull;
	Datum		h;
	char	   *res = NULL;

	if (a_subject_hash == InvalidAttrNumber)
		return NULL;
	h = heap_getattr(tup, a_subject_hash, desc, &isnull);
	if (isnull)
		return NULL;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT d.subject FROM customer_vault.evidence_subjects d"
							  " WHERE d.subject_hash OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {BYTEAOID}, (Datum[]) {h}, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read evidence_subjects");
	if (SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		bytea	   *hb = DatumGetByteaPP(h);
		uint8		mine[32];

		if (v != NULL && VARSIZE_ANY_EXHDR(hb) == 32 && CvSubjectHash(v, strlen(v), false, mine) &&
			memcmp(mine, VARDATA_ANY(hb), 32) != 0)
		{
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("evidence_subjects names the subject of a legal hold wrongly"),
					 errdetail("The subject its row holds for legal hold " INT64_FORMAT " does not have the hold's hash; the row is ignored.", hold_id),
					 errhint("Delete the row from customer_vault.evidence_subjects; the hold then stands on the subject it was placed for.")));
			v = NULL;
		}
		if (v != NULL)
			res = MemoryContextStrdup(cxt, v);
	}
	SPI_finish();
	return res;
}

/*
 * The holds in force (current_legal_holds: placed, not released, not
 * expired), read from legal_hold_events directly under a fresh snapshot
 * (taken after the lock, as a new statement would); the first one (by id)
 * that names the subject refuses the erasure, naming it.
 */
static void
fg_hold_scan(const FgSubject *fs)
{
	Relation	rel;
	TupleDesc	desc;
	AttrNumber	a_id;
	AttrNumber	a_hold;
	AttrNumber	a_action;
	AttrNumber	a_subject;
	AttrNumber	a_reason;
	AttrNumber	a_until;
	Snapshot	snap;
	TableScanDesc scan;
	HeapTuple	tup;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			cap = 16;
	int			nrel = 0;
	int64	   *released = palloc(sizeof(int64) * cap);
	List	   *places = NIL;
	ListCell   *lc;
	int64		best = -1;
	char	   *best_reason = NULL;
	AttrNumber	a_hash;
	bool		have_hash;
	uint8		given_hash[32];

	fg_hold_spellings = NIL;
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetTransactionSnapshot());
	rel = fg_open_ext("legal_hold_events", NULL, NULL);
	desc = RelationGetDescr(rel);
	a_id = fg_attnum(rel, "id");
	a_hold = fg_attnum(rel, "hold_id");
	a_action = fg_attnum(rel, "action");
	a_subject = fg_attnum(rel, "subject");
	a_reason = fg_attnum(rel, "reason");
	a_until = fg_attnum(rel, "until");
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		char	   *action = fg_getstr(tup, desc, a_action);
		bool		isnull;

		if (action == NULL)
			continue;
		if (strcmp(action, "release") == 0)
		{
			Datum		h = heap_getattr(tup, a_hold, desc, &isnull);

			if (isnull)
				continue;
			if (nrel == cap)
			{
				cap *= 2;
				released = repalloc(released, sizeof(int64) * cap);
			}
			released[nrel++] = DatumGetInt64(h);
		}
		else if (strcmp(action, "place") == 0)
		{
			Datum		until = heap_getattr(tup, a_until, desc, &isnull);
			char	   *ps = fg_getstr(tup, desc, a_subject);

			/* released and expired ones too: the erasure redacts them all */
			if (ps != NULL && fg_same_subject(fs, ps))
				fg_hold_spellings = lappend(fg_hold_spellings, ps);

			if (!isnull && DatumGetTimestampTz(until) <= now)
				continue;		/* expired */
			places = lappend(places, heap_copytuple(tup));
		}
	}
	table_endscan(scan);
	qsort(released, nrel, sizeof(int64), fg_int64_cmp);

	/*
	 * A hold of the 0.5.0 form names its subject only through
	 * evidence_subjects: fg_hold_subject reads it (SPI, read-only) under the
	 * same fresh snapshot, so a hold committed while this erasure waited for
	 * the lock is seen there too.
	 */
	a_hash = get_attnum(RelationGetRelid(rel), "subject_hash");
	have_hash = places != NIL && CvSubjectHash(fs->text, strlen(fs->text), false, given_hash);
	PushActiveSnapshot(snap);
	foreach(lc, places)
	{
		HeapTuple	p = lfirst(lc);
		bool		isnull;
		int64		id = DatumGetInt64(heap_getattr(p, a_id, desc, &isnull));
		char	   *subject;

		if (best >= 0 && id >= best)
			continue;
		if (bsearch(&id, released, nrel, sizeof(int64), fg_int64_cmp) != NULL)
			continue;
		subject = fg_getstr(p, desc, a_subject);
		if (subject == NULL && a_hash != InvalidAttrNumber)
		{
			/* the hold's hash is that of the subject as given: it stands */
			Datum		h = heap_getattr(p, a_hash, desc, &isnull);

			if (!isnull && have_hash && VARSIZE_ANY_EXHDR(DatumGetByteaPP(h)) == 32 &&
				memcmp(VARDATA_ANY(DatumGetByteaPP(h)), given_hash, 32) == 0)
				subject = pstrdup(fs->text);
			else
				subject = fg_hold_subject(p, desc, a_hash, id);
		}
		if (subject == NULL || !fg_same_value(fs, subject))
			continue;
		best = id;
		best_reason = fg_getstr(p, desc, a_reason);
	}
	PopActiveSnapshot();
	table_close(rel, NoLock);
	UnregisterSnapshot(snap);
	if (best >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("subject is under legal hold " INT64_FORMAT, best),
				 errdetail("Legal hold " INT64_FORMAT " was placed for: %s", best, best_reason ? best_reason : ""),
				 errhint("Nothing was erased. Release the hold with customer_vault.release_legal_hold() when it ends, then repeat the erasure.")));
}

/* a consent found for the subject */
typedef struct FgConsent
{
	char	   *subject;
	char	   *purpose;
} FgConsent;

/* consents by subject, then purpose, bytewise */
static int
fg_consent_cmp(const void *a, const void *b)
{
	const FgConsent *x = a;
	const FgConsent *y = b;
	int			c = strcmp(x->subject, y->subject);

	return c != 0 ? c : strcmp(x->purpose, y->purpose);
}

/*
 * Withdraw every granted consent of the subject, under whichever spelling
 * it was given (fg_consent_ranges finds the candidates in one statement,
 * fg_same keeps those that name the subject), each with a ledger entry
 * naming the receipt; how many.
 */
/* the subjects (spellings) fg_withdraw last withdrew consents of */
static List *fg_withdrawn = NIL;

static int
fg_withdraw(const FgSubject *fs, int64 receipt_id, const char *reason)
{
	List	   *lo = NIL;
	List	   *hi = NIL;
	ListCell   *lc;
	FgConsent  *c;
	int			nc = 0;
	char	  **subjects;
	char	  **purposes;
	int			n = 0;
	uint64		r;
	StringInfoData ev;

	fg_candidate_ranges(fs, &lo, &hi);
	{
		Oid			idx;
		Relation	rel;
		TupleDesc	desc;
		AttrNumber	a_subject;
		AttrNumber	a_purpose;
		AttrNumber	a_granted;
		Snapshot	snap;
		ListCell   *lh;
		int			cap = 8;

		c = palloc(sizeof(FgConsent) * cap);
		CommandCounterIncrement();
		snap = RegisterSnapshot(GetTransactionSnapshot());
		rel = fg_open_ext("consent_state", &idx, "consent_state_pkey");
		/* the index locked to the end of the transaction, as the table (below) */
		index_close(index_open(idx, AccessShareLock), NoLock);
		desc = RelationGetDescr(rel);
		a_subject = fg_attnum(rel, "subject");
		a_purpose = fg_attnum(rel, "purpose");
		a_granted = fg_attnum(rel, "granted");
		forboth(lc, lo, lh, hi)
		{
			ScanKeyData key[2];
			SysScanDesc scan;
			HeapTuple	tup;

			/* ScanKeyInit compares in the C collation, the primary key's */
			ScanKeyInit(&key[0], a_subject, BTGreaterEqualStrategyNumber, F_TEXT_GE,
						CStringGetTextDatum((char *) lfirst(lc)));
			ScanKeyInit(&key[1], a_subject, BTLessStrategyNumber, F_TEXT_LT,
						CStringGetTextDatum((char *) lfirst(lh)));
			CHECK_FOR_INTERRUPTS();
			scan = systable_beginscan(rel, idx, true, snap, 2, key);
			while (HeapTupleIsValid(tup = systable_getnext(scan)))
			{
				bool		isnull;
				Datum		g = heap_getattr(tup, a_granted, desc, &isnull);
				char	   *cs;

				CHECK_FOR_INTERRUPTS();
				cs = fg_getstr(tup, desc, a_subject);
				if (cs == NULL || !fg_same_subject(fs, cs))
					continue;
				/* a spelling of the subject: its state goes with the redaction, granted or not */
				fg_withdrawn = lappend(fg_withdrawn, cs);
				if (isnull || !DatumGetBool(g))
					continue;
				if (nc == cap)
				{
					cap *= 2;
					c = repalloc(c, sizeof(FgConsent) * cap);
				}
				c[nc].subject = cs;
				c[nc].purpose = fg_getstr(tup, desc, a_purpose);
				nc++;
			}
			systable_endscan(scan);
		}
		table_close(rel, NoLock);
		UnregisterSnapshot(snap);
	}
	if (nc == 0)
		return 0;
	/* by subject and purpose (C collation, as consent_state sorts them), each once */
	qsort(c, nc, sizeof(FgConsent), fg_consent_cmp);
	subjects = palloc(sizeof(char *) * nc);
	purposes = palloc(sizeof(char *) * nc);
	for (r = 0; r < nc; r++)
	{
		if (n > 0 && strcmp(subjects[n - 1], c[r].subject) == 0 && strcmp(purposes[n - 1], c[r].purpose) == 0)
			continue;
		subjects[n] = c[r].subject;
		purposes[n] = c[r].purpose;
		n++;
	}
	initStringInfo(&ev);
	appendStringInfo(&ev, "{\"erasure_receipt\": " INT64_FORMAT ", \"reason\": ", receipt_id);
	escape_json(&ev, reason);
	appendStringInfoChar(&ev, '}');
	CvWithdrawConsents(n, subjects, purposes, DirectFunctionCall1(jsonb_in, CStringGetDatum(ev.data)));
	return n;
}

/* 32 bytes as a bytea datum */
static Datum
fg_bytea32(const uint8 *b)
{
	bytea	   *v = palloc(VARHDRSZ + 32);

	SET_VARSIZE(v, VARHDRSZ + 32);
	memcpy(VARDATA(v), b, 32);
	return PointerGetDatum(v);
}

/* a JSON text in jsonb's own (canonical) text form, and the jsonb */
static char *
fg_jsonb_text(const char *json, Datum *jb)
{
	Jsonb	   *j;

	*jb = DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
	j = DatumGetJsonbP(*jb);
	return JsonbToCString(NULL, &j->root, VARSIZE(j));
}

/*
 * Append the receipt to erasure_receipts and move the chain head, in one
 * statement; the hash is made here exactly as the SQL _receipt_hash() makes
 * it (SHA-256 over the previous hash and the UTF-8 text of the jsonb array
 * 'erasure_receipts', id, at in Unix microseconds, role_id, session_role,
 * acting_role, hex subject_hash, reason, counts; verify_receipts() checks
 * it with that function), and the receipt returned as _receipt_json()
 * gives it, as a jsonb allocated in outer.
 */
static Datum
fg_receipt(int64 id, Oid caller, const uint8 *subject_hash, const char *reason, const char *counts,
		   Datum prev_hash, MemoryContext outer)
{
	static SPIPlanPtr plan = NULL;
	TimestampTz at = GetCurrentTimestamp();
	char	   *session_role = GetUserNameFromId(GetSessionUserId(), false);
	char	   *acting = GetUserNameFromId(caller, true);
	char		hex[65];
	uint8		hash[32];
	char		hashhex[65];
	Datum		counts_jb;
	char	   *arr;
	StringInfoData buf;
	Oid			types[10] = {INT8OID, TIMESTAMPTZOID, OIDOID, NAMEOID, NAMEOID, BYTEAOID, TEXTOID,
		JSONBOID, BYTEAOID, BYTEAOID};
	Datum		v[10];
	char		nulls[11] = "          ";
	NameData	sr;
	NameData	ar;
	char	   *canon_counts;
	Datum		result;
	char	   *utf8;

	if (acting == NULL)
		acting = "";
	if (subject_hash != NULL)
	{
		hex_encode((const char *) subject_hash, 32, hex);
		hex[64] = '\0';
	}
	canon_counts = fg_jsonb_text(counts, &counts_jb);

	/* the chained hash, as _receipt_hash() */
	initStringInfo(&buf);
	appendStringInfo(&buf, "[\"erasure_receipts\", " INT64_FORMAT ", " INT64_FORMAT ", " INT64_FORMAT ", ",
					 id, (int64) at + ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC),
					 (int64) caller);
	escape_json(&buf, session_role);
	appendStringInfoString(&buf, ", ");
	escape_json(&buf, acting);
	appendStringInfoString(&buf, ", ");
	if (subject_hash != NULL)
		escape_json(&buf, hex);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ", ");
	escape_json(&buf, reason);
	appendStringInfo(&buf, ", %s]", canon_counts);
	/* already jsonb's text form: its elements as jsonb prints them, ", " between */
	arr = buf.data;
	utf8 = pg_server_to_any(arr, strlen(arr), PG_UTF8);
	initStringInfo(&buf);
	if (prev_hash != (Datum) 0)
	{
		bytea	   *p = DatumGetByteaPP(prev_hash);

		appendBinaryStringInfo(&buf, VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p));
	}
	appendBinaryStringInfo(&buf, utf8, strlen(utf8));
	if (!cv_sha256((const uint8 *) buf.data, buf.len, hash))
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("could not compute SHA-256")));

	/* the receipt and the head */
	namestrcpy(&sr, session_role);
	namestrcpy(&ar, acting);
	v[0] = Int64GetDatum(id);
	v[1] = TimestampTzGetDatum(at);
	v[2] = ObjectIdGetDatum(caller);
	v[3] = NameGetDatum(&sr);
	v[4] = NameGetDatum(&ar);
	if (subject_hash != NULL)
		v[5] = fg_bytea32(subject_hash);
	else
		nulls[5] = 'n';
	v[6] = CStringGetTextDatum(reason);
	v[7] = counts_jb;
	v[8] = prev_hash;
	if (prev_hash == (Datum) 0)
		nulls[8] = 'n';
	v[9] = fg_bytea32(hash);
	if (SPI_execute_plan(CvSavedPlan(&plan,
									 "WITH i AS (INSERT INTO customer_vault.erasure_receipts"
									 "   (id, at, role_id, session_role, acting_role, subject_hash, reason, counts, prev_hash, hash)"
									 "   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10))"
									 " UPDATE customer_vault.erasure_receipts_head h SET last_id = $1, last_hash = $10"
									 " WHERE h.chain OPERATOR(pg_catalog.=) 'erasure_receipts'",
									 10, types), v, nulls, false, 0) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "could not write the erasure receipt");

	/* the receipt as _receipt_json() gives it */
	hex_encode((const char *) hash, 32, hashhex);
	hashhex[64] = '\0';
	resetStringInfo(&buf);
	appendStringInfo(&buf, "{\"receipt_id\": " INT64_FORMAT ", \"at\": ", id);
	escape_json(&buf, JsonEncodeDateTime(NULL, TimestampTzGetDatum(at), TIMESTAMPTZOID, NULL));
	appendStringInfoString(&buf, ", \"role\": ");
	escape_json(&buf, session_role);
	appendStringInfoString(&buf, ", \"acting_role\": ");
	escape_json(&buf, acting);
	appendStringInfoString(&buf, ", \"subject_hash\": ");
	if (subject_hash != NULL)
		escape_json(&buf, hex);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ", \"reason\": ");
	escape_json(&buf, reason);
	appendStringInfoString(&buf, ", \"hash\": ");
	escape_json(&buf, hashhex);
	appendStringInfoChar(&buf, '}');
	/* then the members of counts (already jsonb: not parsed again; no key in common) */
	{
		Datum		head = DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
		MemoryContext old = MemoryContextSwitchTo(outer);

		result = DirectFunctionCall2(jsonb_concat, head, counts_jb);
		MemoryContextSwitchTo(old);
	}
	return result;
}

/* a subject hash this erasure computed */
typedef struct FgHash
{
	char	   *subject;
	uint8		hash[32];
} FgHash;

/* CvEvidenceSubjectHash, remembered for this erasure */
static bool
fg_evidence_hash(const char *subject, uint8 out[32])
{
	ListCell   *lc;
	FgHash	   *h;

	foreach(lc, fg_hashes)
	{
		h = lfirst(lc);
		if (strcmp(h->subject, subject) == 0)
		{
			memcpy(out, h->hash, 32);
			return true;
		}
	}
	if (!CvEvidenceSubjectHash(subject, strlen(subject), out))
		return false;
	h = palloc(sizeof(FgHash));
	h->subject = pstrdup(subject);
	memcpy(h->hash, out, 32);
	fg_hashes = lappend(fg_hashes, h);
	return true;
}

#if PG_VERSION_NUM >= 180000
#define FG_INDEX_BEGINSCAN(heap, index, snap, nkeys) index_beginscan((heap), (index), (snap), NULL, (nkeys), 0)
#else
#define FG_INDEX_BEGINSCAN(heap, index, snap, nkeys) index_beginscan((heap), (index), (snap), (nkeys), 0)
#endif

/*
 * Whether an index of an extension table finds a row whose column att (the
 * index's first column) equals val: eq compares as the column collates, and
 * checks again what a lossy index (hash) returns
 */
static bool
fg_probe(Relation rel, Relation irel, AttrNumber att, StrategyNumber strat, RegProcedure eq, Datum val,
		 Snapshot snap, TupleTableSlot *slot)
{
	Oid			coll = TupleDescAttr(RelationGetDescr(rel), att - 1)->attcollation;
	ScanKeyData key;
	IndexScanDesc scan;
	bool		found = false;

	ScanKeyInit(&key, 1, strat, eq, val);
	key.sk_collation = coll;
	scan = FG_INDEX_BEGINSCAN(rel, irel, snap, 1);
	index_rescan(scan, &key, 1, NULL, 0);
	while (!found && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;

		if (!scan->xs_recheck)
			found = true;
		else
		{
			d = slot_getattr(slot, att, &isnull);
			found = !isnull && DatumGetBool(OidFunctionCall2Coll(eq, coll, d, val));
		}
	}
	index_endscan(scan);
	ExecClearTuple(slot);
	return found;
}

/*
 * The evidence tables fg_evidence_exists probes and their indexes (on the
 * subject, then on the subject hash), looked up once per session (forgotten
 * at any invalidation of one of them, or of all)
 */
#define FG_NEVID 4
static const char *const fg_evid_names[FG_NEVID][3] = {
	{"consent_state", "consent_state_pkey", NULL},
	{"evidence_subjects", NULL, "evidence_subjects_pkey"},
	{"consent_ledger", "consent_ledger_subject_idx", "consent_ledger_subject_hash_idx"},
	{"legal_hold_events", "legal_hold_events_subject_idx", "legal_hold_events_subject_hash_idx"},
};
static Oid	fg_evid_oids[FG_NEVID][3];
static bool fg_evid_valid = false;

/* a relcache invalidation of one of the evidence tables: look them up again */
static void
fg_evid_inval(Oid relid)
{
	int			i;
	int			j;

	if (!fg_evid_valid)
		return;
	for (i = 0; i < FG_NEVID; i++)
		for (j = 0; j < 3; j++)
			if (!OidIsValid(relid) || fg_evid_oids[i][j] == relid)
				fg_evid_valid = false;
}

/* an evidence table and its indexes opened, each with its lock kept */
typedef struct FgEvid
{
	Relation	rel;
	Relation	idx[2];			/* on the subject, on the subject hash (or NULL) */
	AttrNumber	att[2];			/* subject, subject_hash */
	TupleTableSlot *slot;
} FgEvid;

/*
 * Evidence table i and its indexes (the local rows under Citus), opened for
 * reading; false when one of them or of their columns is missing.  The
 * locks are kept to the end of the transaction (closed with NoLock), as the
 * executor keeps them: the next erasure of the transaction finds them held.
 */
static bool
fg_open_evidence(int i, FgEvid *ev)
{
	Oid			relid;
	Oid			idx[2];
	int			nidx = 0;
	int			j;

	memset(ev, 0, sizeof(FgEvid));
	if (!fg_evid_valid)
	{
		Oid			nsp = get_namespace_oid(CV_SCHEMA, false);
		int			k;

		for (k = 0; k < FG_NEVID; k++)
			for (j = 0; j < 3; j++)
				fg_evid_oids[k][j] = fg_evid_names[k][j] != NULL ?
					get_relname_relid(fg_evid_names[k][j], nsp) : InvalidOid;
		fg_evid_valid = true;
	}
	relid = fg_evid_oids[i][0];
	if (!OidIsValid(relid))
		return false;
	for (j = 0; j < 2; j++)
	{
		if (fg_evid_names[i][j + 1] == NULL)
			continue;
		if (!OidIsValid(fg_evid_oids[i][j + 1]))
			return false;
		idx[nidx++] = fg_evid_oids[i][j + 1];
	}
	relid = CvCitusRowsRelation(relid, idx, nidx);
	ev->rel = table_open(relid, AccessShareLock);
	ev->att[0] = get_attnum(relid, "subject");
	ev->att[1] = get_attnum(relid, "subject_hash");
	nidx = 0;
	for (j = 0; j < 2; j++)
		if (fg_evid_names[i][j + 1] != NULL)
			ev->idx[j] = index_open(idx[nidx++], AccessShareLock);
	ev->slot = table_slot_create(ev->rel, NULL);
	return ev->att[0] != InvalidAttrNumber && ev->att[1] != InvalidAttrNumber;
}

/*
 * Whether _redact_subject has anything to do for these spellings: a row of
 * consent_state, evidence_subjects, consent_ledger or legal_hold_events that
 * names one of them, in plain text or as its keyed hash, seen under a fresh
 * snapshot as the function's own statements would see them.  Index probes
 * only; an erasure of a subject that left no evidence then skips the
 * function (the planning of its statements was most of such an erasure's
 * time).  Any row at all counts (a redact entry too): the function decides
 * what it names.  A table, index or column missing: true (likewise).
 */
static bool
fg_evidence_exists(List *spellings)
{
	FgEvid		ev[FG_NEVID];
	Snapshot	snap;
	List	   *done = NIL;
	ListCell   *lc;
	bool		found = false;
	int			i;
	int			j;

	for (i = 0; i < FG_NEVID; i++)
		if (!fg_open_evidence(i, &ev[i]))
			found = true;
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetTransactionSnapshot());
	foreach(lc, spellings)
	{
		const char *s = lfirst(lc);
		uint8		h[32];
		Datum		val[2];
		ListCell   *ld;
		bool		dup = false;

		if (found)
			break;
		foreach(ld, done)
			dup = dup || strcmp(lfirst(ld), s) == 0;
		if (s[0] == '\0' || dup)
			continue;
		done = lappend(done, (void *) s);
		val[0] = CStringGetTextDatum(s);
		val[1] = fg_evidence_hash(s, h) ? fg_bytea32(h) : (Datum) 0;

		/*
		 * consent_state by the subject (its primary key's first column);
		 * evidence_subjects by the hash; the ledger and the hold log by the
		 * subject (entries of hash version 1; the ledger's index is a hash
		 * index) and by the hash (version 2)
		 */
		for (i = 0; i < FG_NEVID && !found; i++)
			for (j = 0; j < 2 && !found; j++)
				if (ev[i].idx[j] != NULL && val[j] != (Datum) 0)
					found = fg_probe(ev[i].rel, ev[i].idx[j], ev[i].att[j],
									 ev[i].idx[j]->rd_rel->relam == HASH_AM_OID ?
									 HTEqualStrategyNumber : BTEqualStrategyNumber,
									 j == 0 ? F_TEXTEQ : F_BYTEAEQ, val[j], snap, ev[i].slot);
	}
	UnregisterSnapshot(snap);
	for (i = 0; i < FG_NEVID; i++)
	{
		if (ev[i].slot != NULL)
			ExecDropSingleTupleTableSlot(ev[i].slot);
		for (j = 0; j < 2; j++)
			if (ev[i].idx[j] != NULL)
				index_close(ev[i].idx[j], NoLock);
		if (ev[i].rel != NULL)
			table_close(ev[i].rel, NoLock);
	}
	return found;
}

PG_FUNCTION_INFO_V1(cv_forget_subject);


/*
 * customer_vault.forget_subject(subject text, reason text) RETURNS jsonb:
 * the erasure of one subject in one transaction (SECURITY DEFINER: the
 * receipt chain, the keys, the consents and the holds as the extension's
 * owner; each table as its own owner).  Refused under a legal hold; the
 * walk; the subject's key under every spelling shredded; every consent
 * withdrawn; the hash-chained receipt appended and returned.
 */
Datum
cv_forget_subject(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *subject;
	char	   *reason;
	Oid			caller;
	FgSubject	fs;
	StringInfoData spell;
	StringInfoData counts;
	List	   *seen = NIL;
	char	   *tables;
	char	   *not_reached;
	char	   *canon;
	Oid			ctypes[FG_MAX_TYPES];
	int			nct = 0;
	int64		receipt_id;
	bool		has_prev;
	Datum		prev_hash = (Datum) 0;
	bool		shredded;
	int			withdrawn;
	uint8		hash[32];
	bool		has_hash;
	Datum		result = (Datum) 0;
	int			i;

	/* the holds and the receipts are the coordinator's: not on a Citus worker */
	CvRefuseOnCitusWorker("forget_subject()");
	if (PG_ARGISNULL(0) || VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("subject must not be null or empty")));
	if (VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0)) > CV_SUBJECT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("subject identifier is too long"),
				 errdetail("A subject identifier is at most %d bytes long.", CV_SUBJECT_MAX)));
	reason = PG_ARGISNULL(1) ? NULL : TextDatumGetCString(PG_GETARG_DATUM(1));
	if (reason != NULL)
	{
		const char *c = reason;

		while (*c == ' ')
			c++;
		if (*c == '\0')
			reason = NULL;
	}
	if (reason == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("an erasure needs a reason"),
				 errhint("Say why, e.g. 'request of the customer, ticket 4711'.")));
	if (fg_busy)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("an erasure cannot start inside another erasure")));
	subject = TextDatumGetCString(PG_GETARG_DATUM(0));
	/* the calling role: the one SET ROLE chose, else the session user (as _calling_role()) */
	caller = OidIsValid(GetCurrentRoleId()) ? GetCurrentRoleId() : GetSessionUserId();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	fg_busy = true;
	PG_TRY();
	{
		List	   *same = NIL;

		/* the plan, built again when the catalog, the registry or the labels changed; the tables locked */
		fg_begin_walk("erasure", RowExclusiveLock);
		fg_hashes = NIL;
		fg_subject_init(&fs, subject);

		/* refused under a legal hold */
		fg_check_holds(&fs);

		/* the head of the receipt chain, locked to the end of the transaction */
		if (SPI_execute_plan(CvSavedPlan(&fg_plan_head,
										 "SELECT h.last_id OPERATOR(pg_catalog.+) 1, h.last_hash"
										 " FROM customer_vault.erasure_receipts_head h"
										 " WHERE h.chain OPERATOR(pg_catalog.=) 'erasure_receipts' FOR UPDATE",
										 0, NULL), NULL, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock the receipt chain");
		if (SPI_processed == 0 &&
			SPI_execute_plan(CvSavedPlan(&fg_plan_headinit,
										 "SELECT r.next_id, r.prev_hash FROM customer_vault._receipt_next() r",
										 0, NULL), NULL, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock the receipt chain");
		if (SPI_processed != 1)
			elog(ERROR, "the receipt chain has no head");
		{
			bool		isnull;

			receipt_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			prev_hash = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
			has_prev = !isnull;
			if (has_prev)
				prev_hash = datumCopy(prev_hash, false, -1);
		}

		/* every table holding the subject's rows, changed as its owner */
		initStringInfo(&spell);
		fg_sealed = NIL;
		fg_sealed_rels = NIL;
		fg_walk(subject, PG_GETARG_DATUM(0), caller, &spell, &seen, &tables, &not_reached);

		/*
		 * The subject's key under every spelling that names the same subject
		 * for every registered type (fg_same_subject; a protected column's
		 * trigger seals under (id)::text: '42' for forget_subject('042') on
		 * a bigint column): the walk's and the canonical one, and every
		 * spelling with a live key; the receipt holds the hash of the
		 * canonical one.
		 */
		for (i = 0; i < fg_n; i++)
			if (fg_tables[i].depth == 0 && nct < FG_MAX_TYPES)
				ctypes[nct++] = fg_tables[i].subject_type;
		canon = fg_canonical(subject, ctypes, nct);
		fg_add_spelling(&spell, &seen, canon);
		{
			ListCell   *lc;

			foreach(lc, seen)
				if (fg_same_subject(&fs, (const char *) lfirst(lc)))
					same = lappend(same, lfirst(lc));
		}
		fg_key_spellings(&fs, &same);

		/*
		 * The rows a table keeps (retention action 'shred') are sealed
		 * under (column)::text: their key goes with the subject's.  Where a
		 * text (or char(n)) subject column holds that spelling as another
		 * subject ('42' next to forget_subject('042')), that subject's live
		 * key is not this erasure's to shred, and the kept rows must not
		 * stay readable either: refused.
		 */
		{
			ListCell   *lc;
			ListCell   *lr;

			forboth(lc, fg_sealed, lr, fg_sealed_rels)
			{
				const char *sp = lfirst(lc);

				if (fg_same_subject(&fs, sp))
				{
					same = lappend(same, (void *) sp);
					continue;
				}
				if (!fg_live_key(sp))
					continue;
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("the subject's rows that table %s keeps are sealed under another subject's key",
								DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(lfirst_oid(lr))))),
						 errdetail("The table keeps them (retention action shred) and they are sealed under the subject as its subject column writes it, which a text subject column holds as another subject. Nothing was erased."),
						 errhint("Erase the subject as that column writes it first (e.g. '42' for '042' in a bigint column), then this spelling.")));
			}
			fg_sealed = NIL;
			fg_sealed_rels = NIL;
		}
		shredded = CvShredSubjects(fg_text_array(same));

		/* every consent of the subject, under whichever spelling it was given */
		fg_withdrawn = NIL;
		withdrawn = fg_withdraw(&fs, receipt_id, reason);

		/*
		 * The subject's plain identifier out of the consent state and the
		 * evidence logs, under every spelling of the same subject: the
		 * walk's, the canonical one, those with a key, the subject as given
		 * and those of its consent states (_redact_subject, part LEDGER).
		 */
		{
			List	   *all = list_concat(list_copy(same), fg_withdrawn);

			all = list_concat(all, fg_hold_spellings);
			fg_evidence_spellings(&fs, &all);
			all = lappend(all, pstrdup(subject));
			/* nothing names the subject (no consent, no evidence): nothing to redact */
			if (fg_evidence_exists(all))
			{
				if (SPI_connect() != SPI_OK_CONNECT)
					elog(ERROR, "SPI_connect failed");
				if (SPI_execute_plan(CvSavedPlan(&fg_plan_redact,
												 "SELECT customer_vault._redact_subject($1, $2)",
												 2, (Oid[]) {TEXTARRAYOID, INT8OID}),
									 (Datum[]) {fg_text_array(all), Int64GetDatum(receipt_id)},
									 NULL, false, 0) != SPI_OK_SELECT)
					elog(ERROR, "could not redact the subject from the evidence logs");
				SPI_finish();
			}
			fg_withdrawn = NIL;
			fg_hold_spellings = NIL;
		}

		/*
		 * The receipt: the hash of the canonical spelling when it names the
		 * same subject (was_forgotten of every such spelling is then true),
		 * else of the subject as given ('042' next to a text subject column
		 * is not '42', whose consents and key this erasure left alone)
		 */
		if (!fg_same_subject(&fs, canon))
			canon = subject;
		has_hash = fg_evidence_hash(canon, hash) || CvSubjectHash(canon, strlen(canon), true, hash);
		initStringInfo(&counts);
		appendStringInfo(&counts, "{\"tables\": %s, \"subject_key_shredded\": %s, \"consents_withdrawn\": %d, \"not_reached\": %s}",
						 tables, shredded ? "true" : "false", withdrawn, not_reached);
		result = fg_receipt(receipt_id, caller, has_hash ? hash : NULL, reason, counts.data,
							has_prev ? prev_hash : (Datum) 0, outer);
		fg_walk_kind = NULL;
		fg_busy = false;
	}
	PG_CATCH();
	{
		fg_reset_after_error();
		PG_RE_THROW();
	}
	PG_END_TRY();
	fg_hashes = NIL;			/* allocated in SPI's memory, gone below */
	SPI_finish();
	PG_RETURN_DATUM(result);
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
		if (!fg_valid || fg_children_changed())
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
