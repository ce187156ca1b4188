/*
 * aead_floor.c: the cost of AES-256-GCM alone, per value, for the value
 * sizes of the benchmark (the "floor" no extension can beat).
 *
 * It calls the extension's own wrappers (src/crypto.c: with OpenSSL 3 the
 * provider's AES-256-GCM functions directly, as the server does) the way
 * the extension does for one value: the key schedule set up once, then per
 * value the 12-byte nonce, the associated data (the 8-byte envelope header
 * and a short context such as a customer id, joined), the payload, the
 * tag.  No memory allocation, no base64, no server: only the cipher.
 *
 *   cc -O2 -I../../src -o aead_floor aead_floor.c ../../src/crypto.c -lcrypto
 *   ./aead_floor [iterations_per_size] [size ...]     (default 200000; 25 12 200)
 *
 * Output: the path ("provider" or "evp") on stderr, then one line per size:
 * size seal_ns open_ns seal_open_ns (each the median of 5 timed runs, in
 * nanoseconds per value).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"

#define RUNS 5
#define MAXLEN 4096

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

static void
die(const char *what)
{
	fprintf(stderr, "aead_floor: %s failed\n", what);
	exit(1);
}

int
main(int argc, char **argv)
{
	static const int default_sizes[] = {25, 12, 200};
	long		iters = argc > 1 ? atol(argv[1]) : 200000;
	int			nsizes = argc > 2 ? argc - 2 : 3;
	uint8_t		key[32],
				nonce[12],
				header[8] = {1, 1, 1, 0, 0, 0, 0, 1},
				tag[16];
	const uint8_t ctx[] = "1234567";	/* a 7-digit customer id */
	uint8_t		pt[MAXLEN],
				ct[MAXLEN + 16],
				out[MAXLEN + 16];
	CvAead	   *aead;
	volatile uint8_t sink = 0;
	int			s;

	if (iters < 1)
		iters = 1;
	for (s = 0; s < 32; s++)
		key[s] = (uint8_t) (s * 7 + 1);
	for (s = 0; s < MAXLEN; s++)
		pt[s] = (uint8_t) ('a' + s % 26);
	memset(nonce, 0x5a, sizeof(nonce));

	if ((aead = cv_aead_new(key)) == NULL)
		die("key setup");
	fprintf(stderr, "aead_floor: AES-256-GCM path %s\n", cv_aead_path());

	for (s = 0; s < nsizes; s++)
	{
		int			len = argc > 2 ? atoi(argv[s + 2]) : default_sizes[s];
		double		seal[RUNS],
					open[RUNS];
		int			r;

		if (len < 1 || len > MAXLEN)
			die("size argument");
		for (r = 0; r < RUNS; r++)
		{
			double		t0,
						t1;
			long		i;

			t0 = now_ns();
			for (i = 0; i < iters; i++)
			{
				nonce[0] = (uint8_t) i;
				if (!cv_aead_seal(aead, nonce, header, 8, ctx, 7, pt, len, ct, tag))
					die("seal");
				sink ^= tag[0];
			}
			t1 = now_ns();
			seal[r] = (t1 - t0) / iters;

			/* open the last value sealed, again and again */
			t0 = now_ns();
			for (i = 0; i < iters; i++)
			{
				if (cv_aead_open(aead, nonce, header, 8, ctx, 7, ct, len, tag, out) != 1)
					die("open");
				sink ^= out[0];
			}
			t1 = now_ns();
			open[r] = (t1 - t0) / iters;
		}
		qsort(seal, RUNS, sizeof(double), cmp_double);
		qsort(open, RUNS, sizeof(double), cmp_double);
		printf("%d %.1f %.1f %.1f\n", len, seal[RUNS / 2], open[RUNS / 2],
			   seal[RUNS / 2] + open[RUNS / 2]);
	}
	cv_aead_free(aead);
	return 0;					/* the volatile sink keeps the loops from being optimised away */
}
