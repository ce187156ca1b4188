/*
 * REV26: the vector base64 code of envelope.c against plain references,
 * with guard pages after src and dst (an over-read or over-write faults).
 * Built and run by `make unit` (test/unit/b64_guard); by hand, from the repository root:
 *   gcc -std=gnu99 -O2 -Isrc -o /tmp/b64_guard test/unit/b64_guard.c src/crypto.c -lcrypto
 *   /tmp/b64_guard
 * (-DCV_B64_PORTABLE for the portable code, -DB64_GUARD_NO_AVX2 for the x86 code
 * without AVX2, -fsanitize=address,undefined too)
 */
#ifdef B64_GUARD_NO_AVX2
/*
 * The build where the CPU is said to lack AVX2 (REV28): the alphabet check
 * then takes its SSE2 path at every length from 16, which a machine with
 * AVX2 otherwise never runs past 31 characters.
 */
static int
b64_guard_cpu(const char *feature)
{
	if (__builtin_strcmp(feature, "avx2") == 0)
		return 0;
	if (__builtin_strcmp(feature, "ssse3") == 0)
		return __builtin_cpu_supports("ssse3");
	__builtin_abort();			/* envelope.c asks for nothing else */
}
#define __builtin_cpu_supports(f) b64_guard_cpu(f)
#endif
#include "envelope.c"
#undef __builtin_cpu_supports
#include "b64_ref.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static int fails = 0;
#define FAIL(...) do { if (fails++ < 30) { printf(__VA_ARGS__); printf("\n"); } } while (0)

static uint64_t st = 88172645463325252ULL;
static uint32_t rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (uint32_t) st; }

/* a page-aligned region followed by an inaccessible guard page */
static uint8_t *guarded(size_t size, uint8_t **end)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t n = ((size + pg - 1) / pg + 1) * pg;
	uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(p + n - pg, pg, PROT_NONE);
	*end = p + n - pg;
	return p;
}

/* a page-aligned region after an inaccessible guard page (an under-read faults) */
static uint8_t *guarded_front(size_t size)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t n = ((size + pg - 1) / pg + 1) * pg;
	uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(p, pg, PROT_NONE);
	return p + pg;
}

/*
 * REV28: cv_envelope_text_check against cv_envelope_from_text +
 * cv_envelope_parse on one text, placed against the guard page after it and
 * the one before it, for every expected type: the same verdict and reason.
 */
static uint8_t *tcEnd, *tcStart;
static long tc_checks = 0, tc_accepted = 0;
static void text_check_same(const char *txt, size_t tl)
{
	static uint8_t dec[1000];
	for (int where = 0; where < 2; where++)
	{
		char *s = where ? (char *) tcStart : (char *) tcEnd - tl;
		memcpy(s, txt, tl);
		for (int ty = 0; ty <= 2; ty++)
		{
			size_t dl;
			CvEnvError e1 = cv_envelope_text_check(s, tl, ty);
			CvEnvError e2 = cv_envelope_from_text(s, tl, dec, &dl);
			if (e2 == CV_ENV_OK)
			{
				CvEnvelope env;
				e2 = cv_envelope_parse(dec, dl, ty, &env);
			}
			tc_checks++;
			tc_accepted += e1 == CV_ENV_OK;
			if (e1 != e2)
				FAIL("text_check %d vs decode %d (len %zu type %d) '%.*s'", e1, e2, tl, ty, (int) tl, s);
		}
	}
}

int main(void)
{
	uint8_t *sEnd, *dEnd;
	guarded(4096, &sEnd);
	guarded(4096, &dEnd);
	guarded(4096, &tcEnd);
	uint8_t *sStart = guarded_front(4096);
	tcStart = guarded_front(4096);
	size_t len, p, k;
	int b, round;

#ifdef CV_B64_X86
	printf("avx2 path in use: %d\n", (int) cv_b64_have_avx2());
#endif
	/* alphabet check on strings starting right after a guard page (no load before s) */
	for (len = 0; len <= 200; len++)
	{
		char *s = (char *) sStart;
		for (k = 0; k < len; k++) s[k] = abc[rnd() % 64];
		if (!cv_base64_alphabet_only(s, len)) FAIL("valid string of %zu refused (front)", len);
		for (p = 0; p < len; p++)
		{
			char save = s[p];
			s[p] = (char) (rnd() % 2 ? '=' : 0x80 + rnd() % 128);
			if (cv_base64_alphabet_only(s, len)) FAIL("alphabet_only (front) len %zu pos %zu accepted", len, p);
			s[p] = save;
		}
	}

	/* alphabet check: one substituted byte at every position, every value, strings ending at the guard page and at every alignment */
	for (len = 0; len <= 100; len++)
		for (size_t mis = 0; mis < 16; mis++)
		{
			char *s = (char *) sEnd - len - mis;	/* ends mis bytes before the guard */
			for (k = 0; k < len; k++) s[k] = abc[rnd() % 64];
			if (!cv_base64_alphabet_only(s, len)) FAIL("valid string of %zu refused", len);
			for (p = 0; p < len; p++)
			{
				char save = s[p];
				for (b = 0; b < 256; b++)
				{
					bool want = b64_reverse[b] >= 0;
					s[p] = (char) b;
					if (cv_base64_alphabet_only(s, len) != want)
						FAIL("alphabet_only len %zu pos %zu byte 0x%02x: got %d", len, p, b, !want);
				}
				s[p] = save;
			}
		}
	/* long strings: one bad byte anywhere up to 1400 */
	for (len = 0; len <= 1400; len++)
	{
		char *s = (char *) sEnd - len;
		for (k = 0; k < len; k++) s[k] = abc[rnd() % 64];
		if (!cv_base64_alphabet_only(s, len)) FAIL("valid string of %zu refused", len);
		for (p = 0; p < len; p++)
		{
			static const unsigned char badv[] = {0, '.', ':', '@', '[', '`', '{', '-', '_', '=', ',', '*', 0x7f, 0x80, 0xc3, 0xff, 0xaf, 0xb0, 0xc1, 0xda, 0xe1, 0xfa, 0xab, 0xef};
			char save = s[p];
			for (b = 0; b < (int) sizeof(badv); b++)
			{
				s[p] = (char) badv[b];
				if (cv_base64_alphabet_only(s, len)) FAIL("alphabet_only len %zu pos %zu byte 0x%02x accepted", len, p, badv[b]);
			}
			s[p] = save;
		}
	}
	/* encoder: every length 0..1200, src ending at a guard page, dst exactly sized and ending at a guard page;
	 * on x86-64 once with the paths the CPU has, once more without AVX2 (SSSE3 and the portable tail only) */
	(void) cv_base64_encode(NULL, 0, NULL);	/* (sets the paths up) */
	for (int mode = 0; mode < 2; mode++)
	{
#ifdef CV_B64_X86
	if (mode == 0)
		printf("avx2 encoder in use: %d\n", (int) b64_avx2);
	else
		b64_avx2 = false;
#else
	if (mode == 1)
		break;
#endif
	for (round = 0; round < 5; round++)
		for (len = 0; len <= 1200; len++)
		{
			uint8_t *src = sEnd - len;
			size_t el = cv_base64_encoded_len(len);
			char *dst = (char *) dEnd - el;
			char ref[2000];
			uint8_t back[1300];
			for (k = 0; k < len; k++)
				src[k] = round == 0 ? (uint8_t) rnd() : round == 1 ? 0xFF : round == 2 ? 0 : round == 3 ? (uint8_t)(k * 0x3D) : (uint8_t)(0xFB + (k % 3));
			size_t n = cv_base64_encode(src, len, dst);
			size_t m = ref_base64(src, len, ref);
			if (n != m || n != el || memcmp(dst, ref, n) != 0) FAIL("encode len %zu round %d differs", len, round);
			if (cv_base64_decode(dst, n, back) != (long) len || memcmp(back, src, len) != 0) FAIL("roundtrip %zu", len);
			if (!cv_base64_alphabet_only(dst, n - (len % 3 ? 3 - len % 3 : 0))) FAIL("own output refused %zu", len);
		}
	/* encoder with unaligned src and dst */
	for (len = 16; len <= 200; len++)
		for (size_t a = 0; a < 16; a++)
		{
			uint8_t sbuf[300]; char dbuf[400], ref[400];
			for (k = 0; k < len; k++) sbuf[a + k] = (uint8_t) rnd();
			size_t n = cv_base64_encode(sbuf + a, len, dbuf + (15 - a));
			ref_base64(sbuf + a, len, ref);
			if (memcmp(dbuf + 15 - a, ref, n) != 0) FAIL("unaligned encode %zu/%zu", len, a);
		}
	}
	#ifdef CV_B64_X86
	printf("ssse3 path in use: %d\n", (int) b64_ssse3);
#endif
	/* text_check vs from_text + parse on mutated real envelopes */
	{
		long iter;
		for (iter = 0; iter < 300000; iter++)
		{
			uint8_t bin[400], dec[600];
			char txt[700];
			size_t blen = CV_ENV_OVERHEAD + rnd() % 200, tl, dl;
			for (k = 0; k < blen; k++) bin[k] = (uint8_t) rnd();
			cv_envelope_write_header(bin, (rnd() & 1) ? CV_ENV_TYPE_TEXT : CV_ENV_TYPE_BYTEA, rnd() % 4 == 0 ? 0xFF : 0, 1 + rnd() % 1000);
			if (rnd() % 8 == 0) blen = rnd() % (CV_ENV_OVERHEAD + 2);
			tl = cv_envelope_to_text(bin, blen, txt);
			int nm = rnd() % 3;
			for (int j = 0; j < nm; j++)
			{
				int op = rnd() % 4;
				size_t at = rnd() % (tl + 1);
				static const char pool[] = "=.:@[`{-_/+Aa09\x80\xff\xc3\xa9 \n";
				if (op == 0 && at < tl) txt[at] = pool[rnd() % (sizeof(pool) - 1)];
				else if (op == 1 && tl > 0) tl -= 1 + rnd() % (tl < 4 ? tl : 4);
				else if (op == 2 && tl < 690) { memmove(txt + at + 1, txt + at, tl - at); txt[at] = pool[rnd() % (sizeof(pool) - 1)]; tl++; }
				else if (op == 3 && at < tl) txt[at] = abc[rnd() % 64];
			}
			for (int ty = 0; ty <= 2; ty++)
			{
				CvEnvError e1 = cv_envelope_text_check(txt, tl, ty);
				CvEnvError e2 = cv_envelope_from_text(txt, tl, dec, &dl);
				if (e2 == CV_ENV_OK)
				{
					CvEnvelope env;
					e2 = cv_envelope_parse(dec, dl, ty, &env);
				}
				/* the same verdict, and the same reason */
				if (e1 != e2) FAIL("text_check %d vs decode %d (len %zu type %d) '%.*s'", e1, e2, tl, ty, (int) tl, txt);
			}
		}
	}
	/*
	 * REV28: short texts (0..64 characters after the prefix) of the alphabet,
	 * '=' and bytes outside it, with every padding form ("=", "==", "===",
	 * "=" before the last character) and often a header of valid or nearly
	 * valid fields; and real envelopes of every length 0..300 bytes with '='
	 * or another character anywhere, the last group made non-canonical, or cut
	 */
	{
		static const unsigned char odd[] = {'=', 0, 0x80, 0xff, 0x7f, '.', '-', '_', ' ', '\n', 0xc3, '*', ',', ':', '@', '[', '`', '{', 0xab, 0xe1};
		char txt[800];
		uint8_t bin[400];
		long it;
		size_t n;

		for (it = 0; it < 200000; it++)
		{
			int mode = rnd() % 3, tail = rnd() % 6;

			n = rnd() % 65;
			memcpy(txt, "cv1$", 4);
			for (k = 0; k < n; k++)
				txt[4 + k] = (mode == 0 || rnd() % 8) ? abc[rnd() % 64] : (char) odd[rnd() % sizeof(odd)];
			if (n >= 12 && rnd() % 2)
			{
				uint8_t h[9];
				cv_envelope_write_header(h, rnd() % 4, rnd() % 3 == 0 ? rnd() % 8 : CV_ENV_FLAG_CONTEXT,
										 rnd() % 3 == 0 ? rnd() : 1 + rnd() % 5);
				if (rnd() % 4 == 0) h[3] = (uint8_t) rnd();
				if (rnd() % 4 == 0) h[0] = rnd() % 3;
				h[8] = (uint8_t) rnd();
				cv_base64_encode(h, 9, txt + 4);
			}
			if (n >= 1 && tail == 1) txt[4 + n - 1] = '=';
			if (n >= 2 && tail == 2) { txt[4 + n - 1] = '='; txt[4 + n - 2] = '='; }
			if (n >= 3 && tail == 3) { txt[4 + n - 1] = '='; txt[4 + n - 2] = '='; txt[4 + n - 3] = '='; }
			if (n >= 2 && tail == 4) txt[4 + n - 2] = '=';
			text_check_same(txt, 4 + n);
			if (it % 64 == 0)
			{
				txt[rnd() % 4] ^= (char) (1 << (rnd() % 8));
				text_check_same(txt, 4 + n);
				text_check_same(txt, rnd() % 4);
			}
		}
		for (it = 0; it < 100000; it++)
		{
			size_t bl = (size_t) (it % 301), tl;
			int m = rnd() % 4;

			for (k = 0; k < bl; k++) bin[k] = (uint8_t) rnd();
			if (bl >= 8 && rnd() % 4)
				cv_envelope_write_header(bin, 1 + rnd() % 2, rnd() % 4, 1 + rnd() % 100000);
			tl = cv_envelope_to_text(bin, bl, txt);
			for (int j = 0; j < m && tl > 4; j++)
			{
				int op = rnd() % 5;
				size_t at = 4 + rnd() % (tl - 4);
				if (op == 0) txt[at] = '=';
				else if (op == 1) txt[at] = abc[rnd() % 64];
				else if (op == 2) txt[at] = (char) odd[rnd() % sizeof(odd)];
				else if (op == 3) txt[tl - 1 - rnd() % 3] = abc[rnd() % 64];
				else tl -= rnd() % 2 ? 4 : 1;
			}
			text_check_same(txt, tl);
		}
		printf("text_check: %ld comparisons, %ld accepted\n", tc_checks, tc_accepted);
		if (tc_accepted < tc_checks / 20) FAIL("too few accepted texts: %ld", tc_accepted);
	}
	printf("%d failures\n", fails);
	return fails != 0;
}
