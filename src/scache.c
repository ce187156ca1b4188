/*-------------------------------------------------------------------------
 * scache.c
 *		The shared consent cache: the live opt-ins of one purpose, read once
 *		per database into a dynamic shared memory segment that every backend
 *		(and every parallel worker) of that database maps and answers from.
 *
 * A version is built by one backend under its query's snapshot and published
 * only when that snapshot saw exactly the consent changes counted by the
 * shared counters of consent.c (nothing in flight, every finished change
 * visible): it is then tagged with the "finished" value.  A backend uses a
 * published version for a snapshot only under the very rule by which a
 * backend reuses its own cache across snapshots (CvConsentTagValid: "started"
 * still equals the tag, the snapshot sees every change up to it, and the
 * prepared changes still in progress for the build's snapshot are in
 * progress for it too).  So a consent change committed while a version is
 * being built makes the build unpublishable (or the version unusable as soon
 * as it is published), and every later snapshot reads the new state.
 * Anything else (a transaction that changed consent data itself, a hot
 * standby, a parallel worker whose leader has written, a version over the
 * memory bound) uses the per-backend path of consent.c.
 *
 * Versions are immutable once published.  The table in the main shared
 * memory (CV_SC_ENTRIES slots, one per database and purpose) holds the handle
 * of the current version; a published segment is pinned, and replaced ones
 * are unpinned, so a segment lives until the last backend that maps it
 * detaches (a backend detaches a replaced version at the end of the
 * transaction it notices it in).  A build in progress is claimed in the
 * table; other backends that want the same purpose wait for it (at most
 * CV_SC_WAIT_MS, then they read for themselves).  An error in the build
 * releases the claim, so does a backend exit; a SIGKILLed backend makes the
 * postmaster reinitialize the shared memory (and drop every dynamic segment),
 * and an unpublished segment is never reachable by anyone else.
 *
 * Layout of a version: integer subjects (canonical decimal, what id::text
 * gives) in a bitmap over their range when dense enough; text subjects of the
 * form <prefix><integer>, for the most common prefix, in a second bitmap
 * (subjects such as 'cust-1234' are interned to their number).  A bitmap
 * subject with an end date also has a bit in a second bitmap, and its end
 * date in an array in the order of those bits, found by the bit's rank (a
 * count per 64-bit word plus a popcount): no string hashing per row.  Every
 * other subject is in an open-addressing hash table with the subject bytes
 * (and end date) beside it.  Live opt-ins with an end date are kept even when
 * already past it: each reader compares the end date with its own
 * transaction's start, as the index probe does.
 *-------------------------------------------------------------------------
 */
#include "customer_vault.h"
#include "scache.h"

#include <sys/statvfs.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/dsm_impl.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

/* columns of consent_state */
#define Anum_cstate_subject			1
#define Anum_cstate_purpose			2
#define Anum_cstate_granted			3
#define Anum_cstate_valid_until		4

#define CV_SC_ENTRIES	64			/* databases x purposes shared at once */
#define CV_SC_MAGIC		0x43565343	/* "CVSC" */
#define CV_SC_WAIT_MS	2000		/* longest wait for another backend's build */

int			cv_shared_consent_cache_kb = 262144;
int			cv_consent_build_delay_ms = 0;

/* one slot of the table in the main shared memory */
typedef enum CvScState
{
	CV_SC_EMPTY = 0,
	CV_SC_BUILDING,
	CV_SC_READY
} CvScState;

typedef struct CvScEntry
{
	Oid			dbid;
	Oid			relid;			/* of consent_state (a new extension: a new one) */
	char		purpose[NAMEDATALEN];
	CvScState	state;
	int			builder_pid;	/* BUILDING: who */
	CvConsentTag tag;			/* READY: "finished" it was read at, and the
								 * prepared changes its snapshot saw in progress */
	uint64		version;		/* READY: unique id of the version */
	dsm_handle	handle;			/* READY: its segment (pinned) */
	Size		bytes;
	int64		subjects;
} CvScEntry;

typedef struct CvScShared
{
	slock_t		mutex;			/* protects everything below */
	ConditionVariable cv;		/* broadcast when a build ends */
	Size		bytes;			/* of the READY versions */
	uint64		next_version;
	uint64		published;		/* versions published since startup */
	CvScEntry	e[CV_SC_ENTRIES];
} CvScShared;

static CvScShared *sc_shared = NULL;

/* a version this backend maps */
typedef struct CvScAttached
{
	Oid			relid;
	uint64		version;
	uint64		tag;
	bool		published;		/* false: built for one snapshot, never shared */
	char		purpose[NAMEDATALEN];
	dsm_segment *seg;
	const CvScache *sc;
} CvScAttached;

#define CV_SC_MAX_ATTACHED 32
static CvScAttached sc_attached[CV_SC_MAX_ATTACHED];
static int	sc_nattached = 0;

/* the slot this backend claimed for a build, -1 for none */
static int	sc_building = -1;
static bool sc_exit_registered = false;

/* ---------- shared memory ---------- */

/* size of the table */
Size
ScacheShmemSize(void)
{
	return MAXALIGN(sizeof(CvScShared));
}

/* create or attach the table (under AddinShmemInitLock) */
void
ScacheShmemInit(void)
{
	bool		found;

	sc_shared = ShmemInitStruct("customer_vault consent cache", ScacheShmemSize(), &found);
	if (!found)
	{
		memset(sc_shared, 0, ScacheShmemSize());
		SpinLockInit(&sc_shared->mutex);
		ConditionVariableInit(&sc_shared->cv);
		sc_shared->next_version = 1;
	}
}

/* release a build claim (error, exit) and wake the waiters */
static void
sc_release_claim(void)
{
	if (sc_building < 0 || sc_shared == NULL)
		return;
	SpinLockAcquire(&sc_shared->mutex);
	if (sc_shared->e[sc_building].state == CV_SC_BUILDING &&
		sc_shared->e[sc_building].builder_pid == MyProcPid)
		sc_shared->e[sc_building].state = CV_SC_EMPTY;
	SpinLockRelease(&sc_shared->mutex);
	sc_building = -1;
	ConditionVariableBroadcast(&sc_shared->cv);
}

/* before_shmem_exit: a backend leaving during a build (FATAL) releases its claim */
static void
sc_exit_callback(int code, Datum arg)
{
	sc_release_claim();
}

/* ---------- subjects ---------- */

/*
 * Split a subject into a non-empty prefix and its maximal trailing run of
 * digits, when that run is a canonical integer: the prefix length, or -1.
 */
static inline int
sc_split(const char *s, int len, int64 *num)
{
	int			i = len;

	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	if (i == 0 || i == len || i >= CV_SC_PREFIX)
		return -1;
	*num = cv_sc_number(s + i, len - i);
	return *num >= 0 ? i : -1;
}

/*
 * The live opt-in of a subject (s/len, or s NULL and num >= 0 for an integer
 * given without its text; num is cv_sc_number of s otherwise) at
 * transaction start time now.
 */
bool
CvScacheLookup(const CvScache *sc, const char *s, int len, int64 num, int64 now)
{
	char		buf[32];

	if (s != NULL)
		return cv_sc_lookup_text(sc, s, len, now);
	if (sc->fam[0].has_bitmap)
		return cv_sc_family_answer(sc, &sc->fam[0], num, now);
	len = pg_lltoa(num, buf);
	return cv_sc_hash_lookup(sc, buf, len, now);
}

/* ---------- building a version ---------- */

/* a live opt-in read from consent_state */
typedef struct CvScRow
{
	Size		off;			/* of the subject in the text buffer */
	int			len;
	int			fam;			/* bitmap family, -1 for none */
	int64		num;			/* its number in that family */
	bool		has_until;
	TimestampTz until;
} CvScRow;

/* bitmap bounds of a family over rows; whether it is dense enough */
static bool
sc_family_dense(CvScRow *rows, int64 n, int fam, int64 *lo, int64 *hi)
{
	int64		count = 0,
				i,
				range;

	*lo = PG_INT64_MAX;
	*hi = -1;
	for (i = 0; i < n; i++)
	{
		if (rows[i].fam != fam)
			continue;
		*lo = Min(*lo, rows[i].num);
		*hi = Max(*hi, rows[i].num);
		count++;
	}
	if (count == 0)
		return false;
	range = *hi - *lo + 1;
	return range <= Max(count * 64, (int64) 1 << 20) && range <= ((int64) 1 << 30);
}

/* read the live opt-ins of a purpose under snap, and lay them out in a new segment */
static dsm_segment *
sc_build(const char *purpose, Oid cstate_relid, Snapshot snap, uint64 version, Size limit)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "customer_vault shared consent build",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	StringInfoData subj;
	CvScRow    *rows;
	int64		nrows = 0,
				maxrows = 1024,
				nhash = 0,
				i;
	int			wantlen = strlen(purpose);
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	CvScFamily	fam[2];
	int64		words[2] = {0, 0};
	Size		total,
				strings = 0,
				off;
	uint64		nslots = 0;
	dsm_segment *seg = NULL;
	CvScache   *sc;
	char	   *base;
	CvScSlot   *slots;

	initStringInfo(&subj);
	rows = MemoryContextAllocHuge(cxt, sizeof(CvScRow) * maxrows);
	rel = table_open(cstate_relid, AccessShareLock);
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;
		text	   *subject;

		CHECK_FOR_INTERRUPTS();
		d = heap_getattr(tup, Anum_cstate_purpose, desc, &isnull);
		if (isnull)
			continue;
		{
			text	   *pt = DatumGetTextPP(d);

			if (VARSIZE_ANY_EXHDR(pt) != wantlen || memcmp(VARDATA_ANY(pt), purpose, wantlen) != 0)
				continue;
		}
		d = heap_getattr(tup, Anum_cstate_granted, desc, &isnull);
		if (isnull || !DatumGetBool(d))
			continue;
		d = heap_getattr(tup, Anum_cstate_subject, desc, &isnull);
		if (isnull)
			continue;
		subject = DatumGetTextPP(d);
		if (nrows == maxrows)
		{
			maxrows *= 2;
			rows = repalloc_huge(rows, sizeof(CvScRow) * maxrows);
		}
		rows[nrows].off = subj.len;
		rows[nrows].len = VARSIZE_ANY_EXHDR(subject);
		appendBinaryStringInfo(&subj, VARDATA_ANY(subject), rows[nrows].len);
		d = heap_getattr(tup, Anum_cstate_valid_until, desc, &isnull);
		rows[nrows].has_until = !isnull;
		rows[nrows].until = isnull ? 0 : DatumGetTimestampTz(d);
		rows[nrows].num = cv_sc_number(VARDATA_ANY(subject), rows[nrows].len);
		rows[nrows].fam = rows[nrows].num >= 0 ? 0 : -1;
		nrows++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	/* family 0: integer subjects */
	memset(fam, 0, sizeof(fam));
	fam[0].has_bitmap = sc_family_dense(rows, nrows, 0, &fam[0].min, &fam[0].max);

	/* family 1: the prefix of the first text subject <prefix><integer>, if most have it */
	{
		int			plen = -1;
		const char *prefix = NULL;
		int64		ntext = 0,
					nmatch = 0;

		for (i = 0; i < nrows; i++)
		{
			const char *s = subj.data + rows[i].off;
			int64		n = -1;
			int			l;

			if (rows[i].fam == 0)
				continue;
			ntext++;
			l = sc_split(s, rows[i].len, &n);
			if (l < 0)
				continue;
			if (prefix == NULL)
			{
				prefix = s;
				plen = l;
			}
			if (l == plen && memcmp(s, prefix, l) == 0)
			{
				rows[i].fam = 1;
				rows[i].num = n;
				nmatch++;
			}
		}
		if (nmatch > 0 && nmatch * 2 >= ntext)
		{
			memcpy(fam[1].prefix, prefix, plen);
			fam[1].plen = plen;
			fam[1].has_bitmap = sc_family_dense(rows, nrows, 1, &fam[1].min, &fam[1].max);
		}
	}
	/* rows of a family without a bitmap go to the hash table like the others */
	for (i = 0; i < nrows; i++)
	{
		if (rows[i].fam >= 0 && !fam[rows[i].fam].has_bitmap)
			rows[i].fam = -1;
		if (rows[i].fam < 0)
		{
			nhash++;
			strings += MAXALIGN(offsetof(CvScString, s) + rows[i].len);
		}
		else if (rows[i].has_until)
			fam[rows[i].fam].nuntil++;
	}

	/* the layout */
	total = MAXALIGN(sizeof(CvScache));
	for (i = 0; i < 2; i++)
	{
		if (!fam[i].has_bitmap)
			continue;
		words[i] = (fam[i].max - fam[i].min + 1 + 63) / 64;
		fam[i].words_off = total;
		total += words[i] * sizeof(CvScWord);
		fam[i].rank_off = total;
		total += MAXALIGN(words[i] * sizeof(uint32));
		fam[i].untils_off = total;
		total += fam[i].nuntil * sizeof(TimestampTz);
	}
	if (nhash > 0)
	{
		nslots = 16;
		while (nslots < (uint64) nhash * 2)
			nslots *= 2;
	}
	off = total;
	total += nslots * sizeof(CvScSlot);
	total += strings;
	if (total > limit)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return NULL;			/* over the bound: the per-backend path */
	}

	/*
	 * POSIX segments live in /dev/shm, which containers often keep small: a
	 * segment that does not fit would fail with an error (and the query with
	 * it), so leave such a version to the per-backend path instead.
	 */
	if (dynamic_shared_memory_type == DSM_IMPL_POSIX)
	{
		struct statvfs st;

		if (statvfs("/dev/shm", &st) == 0 && (uint64) st.f_bavail * st.f_frsize < (uint64) total * 2)
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(cxt);
			return NULL;
		}
	}
	seg = dsm_create(total, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return NULL;
	}
	base = dsm_segment_address(seg);
	sc = (CvScache *) base;
	memset(base, 0, off + nslots * sizeof(CvScSlot));	/* bitmaps and slots */
	sc->magic = CV_SC_MAGIC;
	sc->version = version;
	sc->dbid = MyDatabaseId;
	sc->relid = cstate_relid;
	strlcpy(sc->purpose, purpose, NAMEDATALEN);
	sc->subjects = nrows;
	sc->total = total;
	memcpy(sc->fam, fam, sizeof(fam));
	for (i = 0; i < 2; i++)
	{
		char		bytes[8] = {0};
		char		mask[8] = {0};

		/* the prefix's first 8 bytes, compared with one load (cv_sc_prefix_equal) */
		memcpy(bytes, sc->fam[i].prefix, Min(sc->fam[i].plen, 8));
		memset(mask, 0xFF, Min(sc->fam[i].plen, 8));
		memcpy(&sc->fam[i].prefix8, bytes, 8);
		memcpy(&sc->fam[i].mask8, mask, 8);
	}
	sc->nslots = nslots;
	sc->slots_off = off;
	sc->strings_off = off + nslots * sizeof(CvScSlot);
	slots = (CvScSlot *) (base + sc->slots_off);
	off = sc->strings_off;
	for (i = 0; i < nrows; i++)
	{
		CvScRow    *r = &rows[i];
		const char *s = subj.data + r->off;

		if (r->fam >= 0)
		{
			CvScFamily *f = &sc->fam[r->fam];
			int64		b = r->num - f->min;
			CvScWord   *w = (CvScWord *) (base + f->words_off) + b / 64;

			w->granted |= UINT64CONST(1) << (b % 64);
			if (r->has_until)
				w->until |= UINT64CONST(1) << (b % 64);
		}
		if (r->fam < 0)
		{
			uint64		h = cv_sc_hash(s, r->len);
			uint64		j;
			CvScString *str = (CvScString *) (base + off);

			str->until = r->until;
			str->has_until = r->has_until;
			memcpy(str->s, s, r->len);
			for (j = h & (nslots - 1); slots[j].tag != 0; j = (j + 1) & (nslots - 1))
				;
			slots[j].tag = cv_sc_tag(h);
			slots[j].len = r->len;
			slots[j].off = off;
			off += MAXALIGN(offsetof(CvScString, s) + r->len);
		}
	}
	Assert(off == total);

	/* the ranks of the end-date bits, then each end date at its bit's rank */
	for (i = 0; i < 2; i++)
	{
		const CvScWord *wd;
		uint32	   *rank;
		uint32		sum = 0;
		int64		w;

		if (!sc->fam[i].has_bitmap)
			continue;
		wd = (const CvScWord *) (base + sc->fam[i].words_off);
		rank = (uint32 *) (base + sc->fam[i].rank_off);
		for (w = 0; w < words[i]; w++)
		{
			rank[w] = sum;
			sum += pg_popcount64(wd[w].until);
		}
		Assert(sum == sc->fam[i].nuntil);
	}
	for (i = 0; i < nrows; i++)
	{
		CvScRow    *r = &rows[i];
		CvScFamily *f;
		uint64		b,
					w;

		if (r->fam < 0 || !r->has_until)
			continue;
		f = &sc->fam[r->fam];
		b = (uint64) (r->num - f->min);
		w = ((const CvScWord *) (base + f->words_off))[b >> 6].until;
		((TimestampTz *) (base + f->untils_off))
			[((const uint32 *) (base + f->rank_off))[b >> 6] +
			 pg_popcount64(w & ((UINT64CONST(1) << (b & 63)) - 1))] = r->until;
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return seg;
}

/* test-only: sleep inside a build (customer_vault.consent_build_delay) */
static void
sc_build_delay(void)
{
	int			left = cv_consent_build_delay_ms;

	while (left > 0)
	{
		int			step = Min(left, 10);

		CHECK_FOR_INTERRUPTS();
		pg_usleep(step * 1000L);
		left -= step;
	}
	CHECK_FOR_INTERRUPTS();
}

/* ---------- attaching ---------- */

/* detach the i-th mapped version */
static void
sc_detach(int i)
{
	dsm_detach(sc_attached[i].seg);
	sc_attached[i] = sc_attached[--sc_nattached];
}

/* remember a mapping (the caller checked there is room) */
static const CvScache *
sc_remember(dsm_segment *seg, uint64 tag, bool published)
{
	const CvScache *sc = dsm_segment_address(seg);
	int			i;

	/* an older version of the same purpose is of no more use */
	for (i = 0; i < sc_nattached; i++)
	{
		if (sc_attached[i].relid == sc->relid && strcmp(sc_attached[i].purpose, sc->purpose) == 0)
		{
			sc_detach(i);
			break;
		}
	}
	Assert(sc_nattached < CV_SC_MAX_ATTACHED);
	dsm_pin_mapping(seg);
	sc_attached[sc_nattached].relid = sc->relid;
	sc_attached[sc_nattached].version = sc->version;
	sc_attached[sc_nattached].tag = tag;
	sc_attached[sc_nattached].published = published;
	strlcpy(sc_attached[sc_nattached].purpose, sc->purpose, NAMEDATALEN);
	sc_attached[sc_nattached].seg = seg;
	sc_attached[sc_nattached].sc = sc;
	sc_nattached++;
	return sc;
}

/* the slot of (this database and consent table, purpose), or -1 */
static int
sc_find(const char *purpose, Oid relid)
{
	int			i;

	for (i = 0; i < CV_SC_ENTRIES; i++)
	{
		CvScEntry  *e = &sc_shared->e[i];

		if (e->state != CV_SC_EMPTY && e->dbid == MyDatabaseId && e->relid == relid &&
			strcmp(e->purpose, purpose) == 0)
			return i;
	}
	return -1;
}

/*
 * The published version of a purpose usable for snap, mapped; NULL when
 * there is none.  *building says another backend is building one.
 */
static const CvScache *
sc_try_attach(const char *purpose, Oid relid, Snapshot snap, bool *building)
{
	int			i;
	uint64		version = 0;
	CvConsentTag tag;
	dsm_handle	handle = 0;
	dsm_segment *seg;
	const CvScache *sc;

	*building = false;
	SpinLockAcquire(&sc_shared->mutex);
	i = sc_find(purpose, relid);
	if (i >= 0 && sc_shared->e[i].state == CV_SC_READY)
	{
		version = sc_shared->e[i].version;
		tag = sc_shared->e[i].tag;
		handle = sc_shared->e[i].handle;
	}
	else if (i >= 0 && sc_shared->e[i].state == CV_SC_BUILDING)
		*building = true;
	SpinLockRelease(&sc_shared->mutex);
	if (version == 0 || !CvConsentTagValid(snap, &tag))
		return NULL;
	for (i = 0; i < sc_nattached; i++)
	{
		if (sc_attached[i].version == version)
			return sc_attached[i].sc;
	}
	seg = dsm_attach(handle);
	if (seg == NULL)
		return NULL;			/* replaced and gone meanwhile */
	sc = dsm_segment_address(seg);
	if (dsm_segment_map_length(seg) < sizeof(CvScache) || sc->magic != CV_SC_MAGIC ||
		sc->version != version || sc->dbid != MyDatabaseId || sc->relid != relid ||
		strcmp(sc->purpose, purpose) != 0)
	{
		dsm_detach(seg);		/* a handle reused by another segment */
		return NULL;
	}
	return sc_remember(seg, tag.finished, true);
}

/* claim the slot of (this database, purpose) for a build: the slot, or -1 */
static int
sc_claim(const char *purpose, Oid relid, uint64 *version, dsm_handle *unpin)
{
	int			i,
				slot = -1;

	*unpin = 0;
	SpinLockAcquire(&sc_shared->mutex);
	i = sc_find(purpose, relid);
	if (i >= 0)
	{
		if (sc_shared->e[i].state == CV_SC_BUILDING)
			i = -2;				/* someone else is at it */
		else
			slot = i;
	}
	if (i == -1)
	{
		for (i = 0; i < CV_SC_ENTRIES; i++)
		{
			if (sc_shared->e[i].state == CV_SC_EMPTY)
			{
				slot = i;
				break;
			}
		}
		if (slot < 0)
		{
			/* full: take the slot of a version no longer current, if any */
			for (i = 0; i < CV_SC_ENTRIES; i++)
			{
				if (sc_shared->e[i].state == CV_SC_READY &&
					sc_shared->e[i].tag.finished != CvConsentStarted())
				{
					slot = i;
					break;
				}
			}
		}
	}
	if (slot >= 0)
	{
		CvScEntry  *e = &sc_shared->e[slot];

		if (e->state == CV_SC_READY)
		{
			*unpin = e->handle;
			sc_shared->bytes -= e->bytes;
		}
		e->dbid = MyDatabaseId;
		e->relid = relid;
		strlcpy(e->purpose, purpose, NAMEDATALEN);
		e->state = CV_SC_BUILDING;
		e->builder_pid = MyProcPid;
		e->version = 0;
		e->handle = 0;
		e->bytes = 0;
		e->subjects = 0;
		*version = sc_shared->next_version++;
	}
	SpinLockRelease(&sc_shared->mutex);
	return slot;
}

/*
 * Publish a built version in our claimed slot when it fits the bound; the
 * handles of versions no longer current are unpinned on the way (memory).
 */
static bool
sc_publish(dsm_segment *seg, const CvConsentTag *tag, Size limit)
{
	const CvScache *sc = dsm_segment_address(seg);
	dsm_handle	unpin[CV_SC_ENTRIES];
	int			nunpin = 0;
	bool		done = false;
	uint64		started;
	int			i;

	dsm_pin_segment(seg);
	SpinLockAcquire(&sc_shared->mutex);
	/* versions that no snapshot can use any more go first */
	started = CvConsentStarted();
	for (i = 0; i < CV_SC_ENTRIES; i++)
	{
		CvScEntry  *e = &sc_shared->e[i];

		if (e->state == CV_SC_READY && e->tag.finished != started)
		{
			unpin[nunpin++] = e->handle;
			sc_shared->bytes -= e->bytes;
			e->state = CV_SC_EMPTY;
		}
	}
	if (sc_shared->e[sc_building].state == CV_SC_BUILDING &&
		sc_shared->e[sc_building].builder_pid == MyProcPid &&
		tag->finished == started && sc_shared->bytes + sc->total <= limit)
	{
		CvScEntry  *e = &sc_shared->e[sc_building];

		e->state = CV_SC_READY;
		e->tag = *tag;
		e->version = sc->version;
		e->handle = dsm_segment_handle(seg);
		e->bytes = sc->total;
		e->subjects = sc->subjects;
		sc_shared->bytes += sc->total;
		sc_shared->published++;
		done = true;
	}
	else if (sc_shared->e[sc_building].state == CV_SC_BUILDING &&
			 sc_shared->e[sc_building].builder_pid == MyProcPid)
		sc_shared->e[sc_building].state = CV_SC_EMPTY;
	SpinLockRelease(&sc_shared->mutex);
	sc_building = -1;
	ConditionVariableBroadcast(&sc_shared->cv);
	for (i = 0; i < nunpin; i++)
		dsm_unpin_segment(unpin[i]);
	if (!done)
		dsm_unpin_segment(dsm_segment_handle(seg));
	return done;
}

/*
 * The shared version of a purpose's live opt-ins that answers for snap: a
 * published one, or one built now (and published when it can be).  NULL
 * means: use the per-backend path (not preloaded, over the memory bound, no
 * version for this snapshot, out of slots or segments).  The caller has
 * checked that this backend may use shared versions at all (consent.c).
 */
const CvScache *
CvScacheGet(const char *purpose, Oid cstate_relid, Snapshot snap)
{
	const CvScache *sc;
	bool		building;
	CvConsentTag tag;
	uint64		version;
	dsm_handle	unpin;
	Size		limit = (Size) cv_shared_consent_cache_kb * 1024;
	TimestampTz wait_start = 0;
	int			slot;
	dsm_segment *volatile seg = NULL;

	if (sc_shared == NULL || limit == 0 || strlen(purpose) >= NAMEDATALEN)
		return NULL;
	/* room to map one more version (every purpose of one query, in practice) */
	if (sc_nattached >= CV_SC_MAX_ATTACHED - 1)
		return NULL;
	for (;;)
	{
		sc = sc_try_attach(purpose, cstate_relid, snap, &building);
		if (sc != NULL)
			return sc;
		if (!building)
			break;
		/* another backend builds it: wait for it, but not for ever */
		if (wait_start == 0)
			wait_start = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(wait_start, GetCurrentTimestamp(), CV_SC_WAIT_MS))
			return NULL;
		ConditionVariablePrepareToSleep(&sc_shared->cv);
		(void) ConditionVariableTimedSleep(&sc_shared->cv, 10, PG_WAIT_EXTENSION);
		ConditionVariableCancelSleep();
	}
	/* build only for a snapshot that sees exactly the finished changes */
	if (!CvConsentSnapshotTag(snap, &tag))
		return NULL;
	if (!sc_exit_registered)
	{
		before_shmem_exit(sc_exit_callback, (Datum) 0);
		sc_exit_registered = true;
	}
	slot = sc_claim(purpose, cstate_relid, &version, &unpin);
	if (unpin != 0)
		dsm_unpin_segment(unpin);
	if (slot < 0)
		return NULL;
	sc_building = slot;
	PG_TRY();
	{
		seg = sc_build(purpose, cstate_relid, snap, version, limit);
		if (seg != NULL)
			sc_build_delay();
	}
	PG_CATCH();
	{
		sc_release_claim();
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (seg == NULL)
	{
		sc_release_claim();
		return NULL;
	}
	/* the tag it answers for: the snapshot must still see exactly the finished changes */
	if (CvConsentSnapshotTag(snap, &tag) && sc_publish(seg, &tag, limit))
		return sc_remember(seg, tag.finished, true);
	sc_release_claim();
	/* not published: still right for this snapshot, kept for this transaction only */
	return sc_remember(seg, 0, false);
}

/*
 * At the end of a transaction: detach versions no longer current (or never
 * published).  True when anything was detached: the caller must then forget
 * every pointer into them.
 */
bool
CvScacheAtXactEnd(void)
{
	bool		any = false;
	uint64		started;
	int			i;

	if (sc_building >= 0)
		sc_release_claim();
	if (sc_nattached == 0)
		return false;
	/*
	 * A version stays of use while no consent change has started since its
	 * tag (lock-free: no spinlock on every commit of every backend).
	 */
	started = CvConsentStarted();
	for (i = sc_nattached - 1; i >= 0; i--)
	{
		if (!sc_attached[i].published || sc_attached[i].tag != started)
		{
			sc_detach(i);
			any = true;
		}
	}
	return any;
}

/* the version number of a mapped version (tests) */
uint64
CvScacheVersion(const CvScache *sc)
{
	return sc->version;
}

PG_FUNCTION_INFO_V1(cv_consent_shared_cache);

/*
 * _consent_shared_cache(): the versions of this database's shared consent
 * cache: purpose, state (building, ready), version, subjects, bytes, and
 * whether it is current (usable by a new snapshot).
 */
Datum
cv_consent_shared_cache(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[6];
	bool		nulls[6];
	int			i;
	CvScEntry	copy[CV_SC_ENTRIES];
	uint64		started;

	InitMaterializedSRF(fcinfo, 0);
	if (sc_shared == NULL)
		PG_RETURN_VOID();
	SpinLockAcquire(&sc_shared->mutex);
	memcpy(copy, sc_shared->e, sizeof(copy));
	SpinLockRelease(&sc_shared->mutex);
	started = CvConsentStarted();
	memset(nulls, 0, sizeof(nulls));
	for (i = 0; i < CV_SC_ENTRIES; i++)
	{
		CvScEntry  *e = &copy[i];

		if (e->state == CV_SC_EMPTY || e->dbid != MyDatabaseId)
			continue;
		values[0] = CStringGetTextDatum(e->purpose);
		values[1] = CStringGetTextDatum(e->state == CV_SC_READY ? "ready" : "building");
		values[2] = Int64GetDatum((int64) e->version);
		values[3] = Int64GetDatum(e->subjects);
		values[4] = Int64GetDatum((int64) e->bytes);
		values[5] = BoolGetDatum(e->state == CV_SC_READY && e->tag.finished == started);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
