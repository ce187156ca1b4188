/*-------------------------------------------------------------------------
 * scache.h
 *		The layout of a version of the shared consent cache (scache.c) and
 *		its lookups, inline: may_process answers a row of a consent policy
 *		from it without a function call (consent.c).
 *
 * A version is immutable once built: everything below only reads it.
 *-------------------------------------------------------------------------
 */
#ifndef CV_SCACHE_H
#define CV_SCACHE_H

#include "customer_vault.h"

#include "common/hashfn.h"
#include "port/pg_bitutils.h"
#include "utils/timestamp.h"

#define CV_SC_PREFIX	24			/* longest interned text prefix, with NUL */

/* one 64-bit word of a family's bitmaps: a live opt-in, and which of those has an end date */
typedef struct CvScWord
{
	uint64		granted;
	uint64		until;			/* a subset of granted */
} CvScWord;

/* a bitmap of subjects <prefix><n>, n in [min, max] */
typedef struct CvScFamily
{
	bool		has_bitmap;
	int			plen;
	char		prefix[CV_SC_PREFIX];
	uint64		prefix8;		/* the prefix's first 8 bytes (zero padded) */
	uint64		mask8;			/* the bytes of prefix8 that are prefix */
	int64		min;
	int64		max;
	Size		words_off;		/* CvScWord per 64 subjects */
	Size		rank_off;		/* uint32 per word: end-date bits in the words before */
	Size		untils_off;		/* TimestampTz per end-date bit, in bit order */
	int64		nuntil;			/* end-date bits */
} CvScFamily;

/* the header of a version's segment; everything else is at offsets from it */
struct CvScache
{
	uint32		magic;
	uint64		version;
	Oid			dbid;
	Oid			relid;
	char		purpose[NAMEDATALEN];
	int64		subjects;
	Size		total;
	CvScFamily	fam[2];			/* 0: integers, 1: <prefix><integer> */
	uint64		nslots;			/* power of two, or 0: no hash table */
	Size		slots_off;
	Size		strings_off;
};

/* a hash slot: tag 0 = empty */
typedef struct CvScSlot
{
	uint32		tag;			/* high half of the hash, | 1 */
	uint32		len;
	uint64		off;			/* of its CvScString from the header */
} CvScSlot;

typedef struct CvScString
{
	TimestampTz until;
	int32		has_until;
	char		s[FLEXIBLE_ARRAY_MEMBER];
} CvScString;

/* hash of a subject's bytes (byte equality is subject equality) */
static inline uint64
cv_sc_hash(const char *s, int len)
{
	return hash_bytes_extended((const unsigned char *) s, len, 0);
}

static inline uint32
cv_sc_tag(uint64 h)
{
	return (uint32) (h >> 32) | 1;
}

/*
 * A canonical non-negative integer ("0" or no leading zero, at most 18
 * digits), else -1.  No early exit per digit: the loop runs as many times as
 * there are bytes, which the branch predictor learns.
 */
static inline int64
cv_sc_number(const char *s, int len)
{
	uint64		v = 0;
	uint32		bad = 0;
	int			i;

	if (len <= 0 || len > 18)
		return -1;
	for (i = 0; i < len; i++)
	{
		uint32		d = (uint32) (unsigned char) s[i] - '0';

		bad |= (d > 9);
		v = v * 10 + d;
	}
	bad |= (s[0] == '0' && len > 1);
	return bad ? -1 : (int64) v;
}

/*
 * The live opt-in of the subject at bit off of a family (off checked against
 * its range): the granted bit, and for one with an end date, that date
 * (found by the rank of its end-date bit) against the transaction start.
 */
static inline bool
cv_sc_family_bit(const CvScache *sc, const CvScFamily *f, uint64 off, TimestampTz now)
{
	const char *base = (const char *) sc;
	const CvScWord *w = (const CvScWord *) (base + f->words_off) + (off >> 6);
	uint64		bit = UINT64CONST(1) << (off & 63);
	uint64		until = w->until;

	if (likely((until & bit) == 0))
		return (w->granted & bit) != 0;
	return ((const TimestampTz *) (base + f->untils_off))
		[((const uint32 *) (base + f->rank_off))[off >> 6] + pg_popcount64(until & (bit - 1))] > now;
}

/* the live opt-in of subject number num of a family */
static inline bool
cv_sc_family_answer(const CvScache *sc, const CvScFamily *f, int64 num, TimestampTz now)
{
	if (num < f->min || num > f->max)
		return false;
	return cv_sc_family_bit(sc, f, (uint64) (num - f->min), now);
}

/* whether s (len > plen) starts with the family's prefix: no libc call */
static inline bool
cv_sc_prefix_equal(const CvScFamily *f, const char *s, int len)
{
	int			i;

	if (f->plen <= 8 && len >= 8)
	{
		uint64		x;

		memcpy(&x, s, 8);
		return ((x ^ f->prefix8) & f->mask8) == 0;
	}
	for (i = 0; i < f->plen; i++)
	{
		if (s[i] != f->prefix[i])
			return false;
	}
	return true;
}

/* the live opt-in of a subject in the hash table */
static inline bool
cv_sc_hash_lookup(const CvScache *sc, const char *s, int len, TimestampTz now)
{
	const CvScSlot *slots;
	uint64		h,
				i;
	uint32		tag;

	if (sc->nslots == 0)
		return false;
	slots = (const CvScSlot *) ((const char *) sc + sc->slots_off);
	h = cv_sc_hash(s, len);
	tag = cv_sc_tag(h);
	for (i = h & (sc->nslots - 1);; i = (i + 1) & (sc->nslots - 1))
	{
		const CvScSlot *slot = &slots[i];

		if (slot->tag == 0)
			return false;
		if (slot->tag == tag && slot->len == (uint32) len)
		{
			const CvScString *str = (const CvScString *) ((const char *) sc + slot->off);

			if (memcmp(str->s, s, len) == 0)
				return !str->has_until || str->until > now;
		}
	}
}

/*
 * The live opt-in of a text subject s/len at transaction start time now:
 * <prefix><canonical integer> of the text family by its bit, a canonical
 * integer by the integer family's bit, anything else by the hash table.
 */
static inline bool
cv_sc_lookup_text(const CvScache *sc, const char *s, int len, TimestampTz now)
{
	const CvScFamily *f = &sc->fam[1];
	int64		n;

	/*
	 * The prefix ends in a non-digit, so <prefix><canonical integer> is
	 * exactly what the build interned for this prefix.
	 */
	if (f->has_bitmap && len > f->plen && cv_sc_prefix_equal(f, s, len))
	{
		n = cv_sc_number(s + f->plen, len - f->plen);
		if (n >= 0)
			return cv_sc_family_answer(sc, f, n, now);
	}
	if (sc->fam[0].has_bitmap)
	{
		n = cv_sc_number(s, len);
		if (n >= 0)
			return cv_sc_family_answer(sc, &sc->fam[0], n, now);
	}
	return cv_sc_hash_lookup(sc, s, len, now);
}

#endif							/* CV_SCACHE_H */
