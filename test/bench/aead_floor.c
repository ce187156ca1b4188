/*
 * aead_floor.c: the cost of AES-256-GCM in OpenSSL alone, per value, for
 * the value sizes of the benchmark (the "floor" no extension can beat).
 *
 * The call sequence is the one the extension makes for one value: the key
 * schedule is set up once, then per value EVP_*Init_ex with a 12-byte
 * nonce, the associated data in two updates (the 8-byte envelope header and
 * a short context such as a customer id), the payload, the tag.  No memory
 * allocation, no base64, no server: only the cipher.
 *
 *   cc -O2 -o aead_floor aead_floor.c -lcrypto
 *   ./aead_floor [iterations_per_size] [size ...]     (default 200000; 25 12 200)
 *
 * Output, one line per size:  size seal_ns open_ns seal_open_ns
 * (each the median of 5 timed runs, in nanoseconds per value).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

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
	EVP_CIPHER_CTX *enc = EVP_CIPHER_CTX_new();
	EVP_CIPHER_CTX *dec = EVP_CIPHER_CTX_new();
	volatile uint8_t sink = 0;
	int			outl,
				s;

	if (iters < 1)
		iters = 1;
	for (s = 0; s < 32; s++)
		key[s] = (uint8_t) (s * 7 + 1);
	for (s = 0; s < MAXLEN; s++)
		pt[s] = (uint8_t) ('a' + s % 26);
	memset(nonce, 0x5a, sizeof(nonce));

	if (!enc || !dec ||
		EVP_EncryptInit_ex(enc, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
		EVP_EncryptInit_ex(enc, NULL, NULL, key, NULL) != 1 ||
		EVP_DecryptInit_ex(dec, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
		EVP_DecryptInit_ex(dec, NULL, NULL, key, NULL) != 1)
		die("key setup");

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
				if (EVP_EncryptInit_ex(enc, NULL, NULL, NULL, nonce) != 1 ||
					EVP_EncryptUpdate(enc, NULL, &outl, header, 8) != 1 ||
					EVP_EncryptUpdate(enc, NULL, &outl, ctx, 7) != 1 ||
					EVP_EncryptUpdate(enc, ct, &outl, pt, len) != 1 ||
					EVP_EncryptFinal_ex(enc, ct + len, &outl) != 1 ||
					EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
					die("seal");
				sink ^= tag[0];
			}
			t1 = now_ns();
			seal[r] = (t1 - t0) / iters;

			/* open the last value sealed, again and again */
			t0 = now_ns();
			for (i = 0; i < iters; i++)
			{
				if (EVP_DecryptInit_ex(dec, NULL, NULL, NULL, nonce) != 1 ||
					EVP_DecryptUpdate(dec, NULL, &outl, header, 8) != 1 ||
					EVP_DecryptUpdate(dec, NULL, &outl, ctx, 7) != 1 ||
					EVP_DecryptUpdate(dec, out, &outl, ct, len) != 1 ||
					EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
					EVP_DecryptFinal_ex(dec, out + len, &outl) != 1)
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
	EVP_CIPHER_CTX_free(enc);
	EVP_CIPHER_CTX_free(dec);
	return 0;					/* the volatile sink keeps the loops from being optimised away */
}
