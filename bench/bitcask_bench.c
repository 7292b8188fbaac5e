/*  bench/bitcask_bench: the Bitcask engine against LevelDB, RocksDB and
    LMDB (each when built in), same workloads in one run.

    Workloads: durable random puts (16-byte keys, 100-byte values, sync on
    every acknowledged write) with 1, 16 and 64 writer threads; random gets
    from the page cache on one thread; reopen time (Bitcask with and
    without hint files; peers: their own open); the keydir's bytes per key;
    put/get p99 latency while a merge runs against steady state.  Prints
    one `name: value` line per figure; `<name>_vs_best_peer` is Titan's
    figure divided by the best peer's (for times, lower is better, so a
    ratio below 1 wins).  --quick finishes in under a minute; the full run
    adds 10M keys for the reopen figure.  Never part of `make check`.  */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bc_engine.h"

#ifdef HAVE_LEVELDB
#include <leveldb/c.h>
#endif
#ifdef HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif
#ifdef HAVE_LMDB
#include <lmdb.h>
#endif

#define KEY_LEN 16
#define VAL_LEN 100

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t
s_mix (uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void
s_key (uint64_t i, uint8_t *key)
{
    uint64_t a = s_mix (i), b = s_mix (a);
    memcpy (key, &a, 8);
    memcpy (key + 8, &b, 8);
}

static void
s_rmtree (const char *dir)
{
    DIR *d = opendir (dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir (d))) {
        if (!strcmp (de->d_name, ".") || !strcmp (de->d_name, ".."))
            continue;
        char path [1024];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
            s_rmtree (path);
        else
            unlink (path);
    }
    closedir (d);
    rmdir (dir);
}

/* ------------------------------------------------------------ engines */

typedef struct {
    const char *name;
    void *(*open) (const char *dir);
    int (*put) (void *h, const uint8_t *k, const uint8_t *v);     /* synced */
    int (*load) (void *h, uint64_t from, uint64_t n);             /* bulk */
    int (*get) (void *h, const uint8_t *k);                        /* 0 found */
    void (*close) (void *h);
} s_engine_t;

/* Titan Bitcask */
static void *
t_open (const char *dir)
{
    bc_options_t opt;
    bc_options_init (&opt);
    opt.max_file_bytes = 64u << 20;
    bc_engine_t *e;
    char err [256];
    if (bc_engine_open (dir, &opt, &e, err, sizeof err)) {
        fprintf (stderr, "bitcask open: %s\n", err);
        return NULL;
    }
    return e;
}
static int
t_put (void *h, const uint8_t *k, const uint8_t *v)
{
    return bc_engine_put (h, k, KEY_LEN, v, VAL_LEN, 0, NULL, NULL, 0);
}
static int
t_load (void *h, uint64_t from, uint64_t n)
{
    enum { B = 2000 };
    static bc_op_t ops [B];
    static uint8_t keys [B][KEY_LEN], val [VAL_LEN];
    for (uint64_t i = 0; i < n; ) {
        size_t m = 0;
        for (; m < B && i < n; m++, i++) {
            s_key (from + i, keys [m]);
            memset (&ops [m], 0, sizeof ops [m]);
            ops [m].kind = BC_OP_PUT;
            ops [m].key = keys [m];
            ops [m].key_len = KEY_LEN;
            ops [m].value = val;
            ops [m].value_len = VAL_LEN;
        }
        int rc = bc_engine_apply_batch (h, ops, m, 0, 0, NULL, 0);
        if (rc)
            return rc;
    }
    return 0;
}
static int
t_get (void *h, const uint8_t *k)
{
    uint8_t *v;
    size_t vl;
    int rc = bc_engine_get (h, k, KEY_LEN, &v, &vl, NULL, NULL, 0);
    if (rc == 0)
        free (v);
    return rc;
}
static void
t_close (void *h)
{
    bc_engine_t *e = h;
    bc_engine_destroy (&e);
}

#ifdef HAVE_LEVELDB
typedef struct { leveldb_t *db; leveldb_writeoptions_t *sync, *nosync;
                 leveldb_readoptions_t *ro; leveldb_options_t *opt; } l_t;
static void *
l_open (const char *dir)
{
    l_t *l = calloc (1, sizeof *l);
    char *err = NULL;
    l->opt = leveldb_options_create ();
    leveldb_options_set_create_if_missing (l->opt, 1);
    l->db = leveldb_open (l->opt, dir, &err);
    if (err) {
        fprintf (stderr, "leveldb: %s\n", err);
        leveldb_free (err);
        return NULL;
    }
    l->sync = leveldb_writeoptions_create ();
    leveldb_writeoptions_set_sync (l->sync, 1);
    l->nosync = leveldb_writeoptions_create ();
    l->ro = leveldb_readoptions_create ();
    return l;
}
static int
l_put (void *h, const uint8_t *k, const uint8_t *v)
{
    l_t *l = h;
    char *err = NULL;
    leveldb_put (l->db, l->sync, (const char *) k, KEY_LEN, (const char *) v,
                 VAL_LEN, &err);
    if (err) { leveldb_free (err); return -EIO; }
    return 0;
}
static int
l_load (void *h, uint64_t from, uint64_t n)
{
    l_t *l = h;
    uint8_t key [KEY_LEN], val [VAL_LEN] = { 0 };
    for (uint64_t i = 0; i < n; ) {
        leveldb_writebatch_t *b = leveldb_writebatch_create ();
        for (int m = 0; m < 2000 && i < n; m++, i++) {
            s_key (from + i, key);
            leveldb_writebatch_put (b, (const char *) key, KEY_LEN,
                                    (const char *) val, VAL_LEN);
        }
        char *err = NULL;
        leveldb_write (l->db, l->nosync, b, &err);
        leveldb_writebatch_destroy (b);
        if (err) { leveldb_free (err); return -EIO; }
    }
    return 0;
}
static int
l_get (void *h, const uint8_t *k)
{
    l_t *l = h;
    char *err = NULL;
    size_t vl;
    char *v = leveldb_get (l->db, l->ro, (const char *) k, KEY_LEN, &vl, &err);
    if (err) { leveldb_free (err); return -EIO; }
    if (!v) return -ENOENT;
    leveldb_free (v);
    return 0;
}
static void
l_close (void *h)
{
    l_t *l = h;
    leveldb_close (l->db);
    leveldb_writeoptions_destroy (l->sync);
    leveldb_writeoptions_destroy (l->nosync);
    leveldb_readoptions_destroy (l->ro);
    leveldb_options_destroy (l->opt);
    free (l);
}
#endif

#ifdef HAVE_ROCKSDB
typedef struct { rocksdb_t *db; rocksdb_writeoptions_t *sync, *nosync;
                 rocksdb_readoptions_t *ro; rocksdb_options_t *opt; } r_t;
static void *
r_open (const char *dir)
{
    r_t *r = calloc (1, sizeof *r);
    char *err = NULL;
    r->opt = rocksdb_options_create ();
    rocksdb_options_set_create_if_missing (r->opt, 1);
    r->db = rocksdb_open (r->opt, dir, &err);
    if (err) {
        fprintf (stderr, "rocksdb: %s\n", err);
        rocksdb_free (err);
        return NULL;
    }
    r->sync = rocksdb_writeoptions_create ();
    rocksdb_writeoptions_set_sync (r->sync, 1);
    r->nosync = rocksdb_writeoptions_create ();
    r->ro = rocksdb_readoptions_create ();
    return r;
}
static int
r_put (void *h, const uint8_t *k, const uint8_t *v)
{
    r_t *r = h;
    char *err = NULL;
    rocksdb_put (r->db, r->sync, (const char *) k, KEY_LEN, (const char *) v,
                 VAL_LEN, &err);
    if (err) { rocksdb_free (err); return -EIO; }
    return 0;
}
static int
r_load (void *h, uint64_t from, uint64_t n)
{
    r_t *r = h;
    uint8_t key [KEY_LEN], val [VAL_LEN] = { 0 };
    for (uint64_t i = 0; i < n; ) {
        rocksdb_writebatch_t *b = rocksdb_writebatch_create ();
        for (int m = 0; m < 2000 && i < n; m++, i++) {
            s_key (from + i, key);
            rocksdb_writebatch_put (b, (const char *) key, KEY_LEN,
                                    (const char *) val, VAL_LEN);
        }
        char *err = NULL;
        rocksdb_write (r->db, r->nosync, b, &err);
        rocksdb_writebatch_destroy (b);
        if (err) { rocksdb_free (err); return -EIO; }
    }
    return 0;
}
static int
r_get (void *h, const uint8_t *k)
{
    r_t *r = h;
    char *err = NULL;
    size_t vl;
    char *v = rocksdb_get (r->db, r->ro, (const char *) k, KEY_LEN, &vl, &err);
    if (err) { rocksdb_free (err); return -EIO; }
    if (!v) return -ENOENT;
    rocksdb_free (v);
    return 0;
}
static void
r_close (void *h)
{
    r_t *r = h;
    rocksdb_close (r->db);
    rocksdb_writeoptions_destroy (r->sync);
    rocksdb_writeoptions_destroy (r->nosync);
    rocksdb_readoptions_destroy (r->ro);
    rocksdb_options_destroy (r->opt);
    free (r);
}
#endif

#ifdef HAVE_LMDB
typedef struct { MDB_env *env; MDB_dbi dbi; } m_t;
static __thread MDB_txn *m_rtxn;
static void *
m_open (const char *dir)
{
    m_t *m = calloc (1, sizeof *m);
    mkdir (dir, 0755);
    MDB_txn *txn;
    if (mdb_env_create (&m->env)
    ||  mdb_env_set_mapsize (m->env, (size_t) 32 << 30)
    ||  mdb_env_set_maxreaders (m->env, 256)
    ||  mdb_env_open (m->env, dir, MDB_NOTLS, 0644)
    ||  mdb_txn_begin (m->env, NULL, 0, &txn)
    ||  mdb_dbi_open (txn, NULL, 0, &m->dbi)
    ||  mdb_txn_commit (txn)) {
        fprintf (stderr, "lmdb: open failed\n");
        return NULL;
    }
    return m;
}
static int
m_put (void *h, const uint8_t *k, const uint8_t *v)
{
    m_t *m = h;
    MDB_txn *txn;
    if (mdb_txn_begin (m->env, NULL, 0, &txn))
        return -EIO;
    MDB_val key = { KEY_LEN, (void *) k }, val = { VAL_LEN, (void *) v };
    if (mdb_put (txn, m->dbi, &key, &val, 0)) {
        mdb_txn_abort (txn);
        return -EIO;
    }
    return mdb_txn_commit (txn) ? -EIO : 0;
}
static int
m_load (void *h, uint64_t from, uint64_t n)
{
    m_t *m = h;
    uint8_t kb [KEY_LEN], vb [VAL_LEN] = { 0 };
    for (uint64_t i = 0; i < n; ) {
        MDB_txn *txn;
        if (mdb_txn_begin (m->env, NULL, 0, &txn))
            return -EIO;
        for (int j = 0; j < 20000 && i < n; j++, i++) {
            s_key (from + i, kb);
            MDB_val key = { KEY_LEN, kb }, val = { VAL_LEN, vb };
            if (mdb_put (txn, m->dbi, &key, &val, 0)) {
                mdb_txn_abort (txn);
                return -EIO;
            }
        }
        if (mdb_txn_commit (txn))
            return -EIO;
    }
    return 0;
}
static int
m_get (void *h, const uint8_t *k)
{
    m_t *m = h;
    if (!m_rtxn) {
        if (mdb_txn_begin (m->env, NULL, MDB_RDONLY, &m_rtxn))
            return -EIO;
    }
    else
    if (mdb_txn_renew (m_rtxn))
        return -EIO;
    MDB_val key = { KEY_LEN, (void *) k }, val;
    int rc = mdb_get (m_rtxn, m->dbi, &key, &val);
    mdb_txn_reset (m_rtxn);
    return rc ? -ENOENT : 0;
}
static void
m_close (void *h)
{
    m_t *m = h;
    if (m_rtxn) {
        mdb_txn_abort (m_rtxn);
        m_rtxn = NULL;
    }
    mdb_env_close (m->env);
    free (m);
}
#endif

static const s_engine_t s_engines [] = {
    { "titan", t_open, t_put, t_load, t_get, t_close },
#ifdef HAVE_LEVELDB
    { "leveldb", l_open, l_put, l_load, l_get, l_close },
#endif
#ifdef HAVE_ROCKSDB
    { "rocksdb", r_open, r_put, r_load, r_get, r_close },
#endif
#ifdef HAVE_LMDB
    { "lmdb", m_open, m_put, m_load, m_get, m_close },
#endif
};
#define N_ENGINES (sizeof s_engines / sizeof s_engines [0])

/* ------------------------------------------------------------ workloads */

static char s_root [512];
static double s_figures [N_ENGINES][16];

typedef struct {
    const s_engine_t *eng;
    void *h;
    int id;
    double until;
    uint64_t done;
    int errors;
} s_worker_t;

static void *
s_put_worker (void *arg)
{
    s_worker_t *w = arg;
    uint8_t key [KEY_LEN], val [VAL_LEN];
    memset (val, 'v', sizeof val);
    uint64_t i = (uint64_t) w->id << 40;
    while (s_now () < w->until) {
        s_key (i++, key);
        if (w->eng->put (w->h, key, val))
            w->errors++;
        else
            w->done++;
    }
    return NULL;
}

static double
s_durable_puts (const s_engine_t *eng, int writers, double seconds)
{
    char dir [600];
    snprintf (dir, sizeof dir, "%s/%s-puts-%d", s_root, eng->name, writers);
    s_rmtree (dir);
    void *h = eng->open (dir);
    if (!h)
        return 0;
    s_worker_t *ws = calloc ((size_t) writers, sizeof *ws);
    pthread_t *th = calloc ((size_t) writers, sizeof *th);
    double start = s_now ();
    for (int i = 0; i < writers; i++) {
        ws [i] = (s_worker_t) { eng, h, i + 1, start + seconds, 0, 0 };
        pthread_create (&th [i], NULL, s_put_worker, &ws [i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < writers; i++) {
        pthread_join (th [i], NULL);
        total += ws [i].done;
    }
    double elapsed = s_now () - start;
    eng->close (h);
    s_rmtree (dir);
    free (ws);
    free (th);
    return total / elapsed;
}

static double
s_gets (const s_engine_t *eng, void *h, uint64_t keys, uint64_t count)
{
    uint8_t key [KEY_LEN];
    uint64_t x = 12345;
    int misses = 0;
    double start = s_now ();
    for (uint64_t i = 0; i < count; i++) {
        x = s_mix (x);
        s_key (x % keys, key);
        if (eng->get (h, key))
            misses++;
    }
    double elapsed = s_now () - start;
    if (misses)
        fprintf (stderr, "%s: %d gets missed\n", eng->name, misses);
    return count / elapsed;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* p99 of put and get latencies (µs) for `seconds`, on one thread. */
static void
s_latency (bc_engine_t *e, uint64_t keys, double seconds, double *put_p99,
           double *get_p99)
{
    size_t cap = 1 << 20, np = 0, ng = 0;
    double *pl = malloc (cap * sizeof *pl), *gl = malloc (cap * sizeof *gl);
    uint8_t key [KEY_LEN], val [VAL_LEN];
    memset (val, 'w', sizeof val);
    uint64_t x = 777;
    double until = s_now () + seconds;
    while (s_now () < until && np < cap) {
        x = s_mix (x);
        s_key (x % keys, key);
        double t0 = s_now ();
        bc_engine_put (e, key, KEY_LEN, val, VAL_LEN, 0, NULL, NULL, 0);
        double t1 = s_now ();
        for (int g = 0; g < 10 && ng < cap; g++) {
            x = s_mix (x);
            s_key (x % keys, key);
            double g0 = s_now ();
            t_get (e, key);
            gl [ng++] = (s_now () - g0) * 1e6;
        }
        pl [np++] = (t1 - t0) * 1e6;
    }
    qsort (pl, np, sizeof *pl, s_cmp_double);
    qsort (gl, ng, sizeof *gl, s_cmp_double);
    *put_p99 = np ? pl [np * 99 / 100] : 0;
    *get_p99 = ng ? gl [ng * 99 / 100] : 0;
    free (pl);
    free (gl);
}

static void *
s_merge_thread (void *arg)
{
    bc_engine_t *e = arg;
    char err [256];
    if (bc_engine_merge (e, NULL, NULL, err, sizeof err))
        fprintf (stderr, "merge: %s\n", err);
    return NULL;
}

static void
s_remove_hints (const char *dir)
{
    DIR *d = opendir (dir);
    struct dirent *de;
    while (d && (de = readdir (d))) {
        if (strstr (de->d_name, ".hint")) {
            char path [1024];
            snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
            unlink (path);
        }
    }
    if (d)
        closedir (d);
}

/* Reopen time of the Bitcask with `keys` keys: from hints, then without. */
static void
s_reopen (uint64_t keys, const char *label, double *with_hints,
          double *without)
{
    char dir [600];
    snprintf (dir, sizeof dir, "%s/titan-open-%s", s_root, label);
    s_rmtree (dir);
    void *h = t_open (dir);
    t_load (h, 0, keys);
    t_close (h);                 /* writes the hint files */
    double t0 = s_now ();
    h = t_open (dir);
    *with_hints = s_now () - t0;
    bc_stats_t st;
    bc_engine_stats (h, &st);
    if (st.keys != keys)
        fprintf (stderr, "reopen: %llu keys, expected %llu\n",
                 (unsigned long long) st.keys, (unsigned long long) keys);
    t_close (h);
    s_remove_hints (dir);
    t0 = s_now ();
    h = t_open (dir);
    *without = s_now () - t0;
    t_close (h);
    s_rmtree (dir);
}

static void
s_print_vs (const char *name, int fig, bool lower_better)
{
    double best = 0;
    const char *who = NULL;
    for (size_t i = 1; i < N_ENGINES; i++) {
        double v = s_figures [i][fig];
        if (v <= 0)
            continue;
        if (!who || (lower_better ? v < best : v > best)) {
            best = v;
            who = s_engines [i].name;
        }
    }
    if (who)
        printf ("%s_vs_best_peer: %.3f  (best peer %s)\n", name,
                s_figures [0][fig] / best, who);
    else
        printf ("%s_vs_best_peer: n/a  (no peer built in)\n", name);
}

int
main (int argc, char **argv)
{
    bool quick = argc > 1 && strcmp (argv [1], "--quick") == 0;
    bool merge_only = argc > 1 && strcmp (argv [argc - 1], "--merge-only") == 0;
    const char *base = getenv ("BITCASK_BENCH_DIR") ? getenv ("BITCASK_BENCH_DIR")
                                                    : "/tmp";
    snprintf (s_root, sizeof s_root, "%s/bitcask-bench-%d", base, (int) getpid ());
    mkdir (s_root, 0755);
    double put_seconds = quick ? 1.0 : 5.0;
    uint64_t get_keys = quick ? 300000 : 1000000;
    uint64_t get_count = quick ? 500000 : 2000000;
    int writers [3] = { 1, 16, 64 };
    printf ("mode: %s\n", quick ? "quick" : "full");
    printf ("engines:");
    for (size_t i = 0; i < N_ENGINES; i++)
        printf (" %s", s_engines [i].name);
    printf ("\n");

    /* durable puts */
    for (size_t e = 0; e < N_ENGINES && !merge_only; e++)
        for (int w = 0; w < 3; w++) {
            s_figures [e][w] = s_durable_puts (&s_engines [e], writers [w],
                                               put_seconds);
            printf ("%s%sdurable_puts_per_s_%dw: %.0f\n",
                    e ? s_engines [e].name : "", e ? "_" : "", writers [w],
                    s_figures [e][w]);
            fflush (stdout);
        }
    for (int w = 0; w < 3 && !merge_only; w++) {
        char name [64];
        snprintf (name, sizeof name, "durable_puts_per_s_%dw", writers [w]);
        s_print_vs (name, w, false);
    }

    /* gets from the page cache, and the peers' open time */
    for (size_t e = 0; e < N_ENGINES && !merge_only; e++) {
        char dir [600];
        snprintf (dir, sizeof dir, "%s/%s-gets", s_root, s_engines [e].name);
        s_rmtree (dir);
        void *h = s_engines [e].open (dir);
        if (!h)
            continue;
        s_engines [e].load (h, 0, get_keys);
        s_figures [e][3] = s_gets (&s_engines [e], h, get_keys, get_count);
        if (e == 0) {
            bc_stats_t st;
            bc_engine_stats (h, &st);
            s_figures [0][4] = (double) st.keydir_bytes / (double) st.keys
                             - KEY_LEN;
        }
        s_engines [e].close (h);
        double t0 = s_now ();
        h = s_engines [e].open (dir);
        s_figures [e][5] = s_now () - t0;
        s_engines [e].close (h);
        s_rmtree (dir);
        printf ("%s%sgets_per_s: %.0f\n", e ? s_engines [e].name : "",
                e ? "_" : "", s_figures [e][3]);
        printf ("%s%sopen_%lluk_keys_s: %.3f\n", e ? s_engines [e].name : "",
                e ? "_" : "", (unsigned long long) get_keys / 1000,
                s_figures [e][5]);
        fflush (stdout);
    }
    if (!merge_only) {
    s_print_vs ("gets_per_s", 3, false);
    char oname [64];
    snprintf (oname, sizeof oname, "open_%lluk_keys_s",
              (unsigned long long) get_keys / 1000);
    s_print_vs (oname, 5, true);
    printf ("keydir_bytes_per_key: %.1f  (plus the key length)\n",
            s_figures [0][4]);
    printf ("keydir_bytes_per_key_vs_best_peer: n/a  (peers keep no "
            "in-memory index of every key)\n");

    /* reopen with and without hints */
    double with, without;
    s_reopen (1000000, "1m", &with, &without);
    printf ("open_1m_keys_s: %.3f\nopen_1m_keys_no_hints_s: %.3f\n", with,
            without);
    if (!quick) {
        s_reopen (10000000, "10m", &with, &without);
        printf ("open_10m_keys_s: %.3f\nopen_10m_keys_no_hints_s: %.3f\n",
                with, without);
    }
    else
        printf ("open_10m_keys_s: skipped in --quick (run without it)\n");
    printf ("open_10m_keys_s_vs_best_peer: n/a  (peers measured at %lluk "
            "keys above)\n", (unsigned long long) get_keys / 1000);
    fflush (stdout);
    }

    /* p99 during a merge */
    {
        char dir [600];
        snprintf (dir, sizeof dir, "%s/titan-merge", s_root);
        s_rmtree (dir);
        bc_options_t opt;
        bc_options_init (&opt);
        opt.max_file_bytes = 8u << 20;
        bc_engine_t *e;
        char err [256];
        if (bc_engine_open (dir, &opt, &e, err, sizeof err) == 0) {
            uint64_t keys = quick ? 300000 : 1000000;
            t_load (e, 0, keys);
            t_load (e, 0, keys / 2);          /* garbage to reclaim */
            bc_engine_rotate (e, err, sizeof err);
            double sp, sg, mp, mg;
            s_latency (e, keys, quick ? 1.5 : 4.0, &sp, &sg);
            pthread_t th;
            pthread_create (&th, NULL, s_merge_thread, e);
            double t0 = s_now ();
            s_latency (e, keys, quick ? 1.5 : 4.0, &mp, &mg);
            pthread_join (th, NULL);
            double merge_s = s_now () - t0;
            printf ("steady_put_p99_us: %.0f\nsteady_get_p99_us: %.1f\n", sp, sg);
            printf ("merge_put_p99_us: %.0f\nmerge_get_p99_us: %.1f\n", mp, mg);
            printf ("merge_seconds: %.2f\n", merge_s);
            double r1 = sp > 0 ? mp / sp : 0, r2 = sg > 0 ? mg / sg : 0;
            printf ("merge_p99_ratio: %.2f\n", r1 > r2 ? r1 : r2);
            printf ("merge_p99_ratio_vs_best_peer: n/a  (peer compactions "
                    "are not triggered on demand here)\n");
            bc_engine_destroy (&e);
        }
        s_rmtree (dir);
    }
    s_rmtree (s_root);
    return 0;
}
