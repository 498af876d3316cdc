/*
 * A small CoreMark-style CPU workload for bench/cpu.ts (written for Vessel, not CoreMark's code).
 * Each iteration runs four kernels on data derived from the iteration number:
 *   list    build a 64-node singly linked list, merge-sort it by key, walk it summing positions
 *   matrix  16x16 int32 matrix multiply, then a row/column reduction
 *   state   a byte-driven state machine (number/identifier/operator scanner) plus a CRC-32
 *   hash    an open-addressing hash table: insert 96 keys, look up 192 (half of them absent)
 * Every kernel folds its result into a running CRC, so the final checksum depends on all of them.
 * Only fixed-width unsigned arithmetic and explicit uint8_t bytes are used, so the checksum is the
 * same on riscv64 and amd64 (plain `char` is unsigned on one and signed on the other).
 *
 * Usage: coremark-like ITERATIONS
 * Prints: COREMARKLIKE iterations=N ns=T checksum=0xXXXXXXXX
 * ns is the timed part only, from clock_gettime(CLOCK_MONOTONIC).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_u32(uint32_t crc, uint32_t v) {
    for (int i = 0; i < 4; i++, v >>= 8) crc = crc_table[(crc ^ v) & 0xff] ^ (crc >> 8);
    return crc;
}

/* A deterministic xorshift32 stream seeded per iteration. */
static uint32_t next_rand(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    return *s = x;
}

/* ---- list ---- */
#define LIST_NODES 64
struct node { struct node *next; uint32_t key; uint32_t pos; };

static struct node *merge(struct node *a, struct node *b) {
    struct node head, *tail = &head;
    while (a && b) {
        /* ties keep list order: a stable sort, so the walk below is fully determined */
        if (a->key <= b->key) { tail->next = a; a = a->next; } else { tail->next = b; b = b->next; }
        tail = tail->next;
    }
    tail->next = a ? a : b;
    return head.next;
}

static struct node *merge_sort(struct node *list) {
    if (!list || !list->next) return list;
    struct node *slow = list, *fast = list->next;
    while (fast && fast->next) { slow = slow->next; fast = fast->next->next; }
    struct node *second = slow->next;
    slow->next = NULL;
    return merge(merge_sort(list), merge_sort(second));
}

static uint32_t bench_list(uint32_t seed) {
    static struct node pool[LIST_NODES];
    struct node *list = NULL;
    for (uint32_t i = 0; i < LIST_NODES; i++) {
        pool[i].key = next_rand(&seed) & 0x3ff;
        pool[i].pos = i;
        pool[i].next = list;
        list = &pool[i];
    }
    list = merge_sort(list);
    uint32_t sum = 0, i = 0;
    for (struct node *n = list; n; n = n->next, i++) sum += (n->pos + 1) * (i + 1) ^ n->key;
    return sum;
}

/* ---- matrix ---- */
#define N 16
static uint32_t bench_matrix(uint32_t seed) {
    static int32_t a[N][N], b[N][N], c[N][N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = (int32_t)(next_rand(&seed) & 0xff) - 128;
            b[i][j] = (int32_t)(next_rand(&seed) & 0xff) - 128;
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            int32_t s = 0;
            for (int k = 0; k < N; k++) s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
    uint32_t r = 0;
    for (int i = 0; i < N; i++) {
        int32_t row = 0, col = 0;
        for (int j = 0; j < N; j++) { row += c[i][j]; col ^= c[j][i]; }
        r = r * 31 + (uint32_t)row + ((uint32_t)col << 3);
    }
    return r;
}

/* ---- state machine ---- */
#define TEXT_BYTES 512
enum scan_state { S_START, S_NUMBER, S_IDENT, S_OPERATOR, S_COUNT };

static uint32_t bench_state(uint32_t seed) {
    static const uint8_t alphabet[] = "0123456789abcdefxyz+-*/=  ,;";
    static uint8_t text[TEXT_BYTES];
    for (int i = 0; i < TEXT_BYTES; i++) text[i] = alphabet[next_rand(&seed) % (sizeof alphabet - 1)];
    uint32_t tokens[S_COUNT] = {0}, crc = 0xffffffffu;
    enum scan_state st = S_START;
    for (int i = 0; i < TEXT_BYTES; i++) {
        uint8_t ch = text[i];
        crc = crc_table[(crc ^ ch) & 0xff] ^ (crc >> 8);
        enum scan_state next;
        if (ch >= '0' && ch <= '9') next = st == S_IDENT ? S_IDENT : S_NUMBER;
        else if (ch >= 'a' && ch <= 'z') next = S_IDENT;
        else if (ch == ' ' || ch == ',' || ch == ';') next = S_START;
        else next = S_OPERATOR;
        if (next != st) tokens[next]++;
        st = next;
    }
    return ~crc ^ (tokens[S_NUMBER] << 20) ^ (tokens[S_IDENT] << 10) ^ tokens[S_OPERATOR];
}

/* ---- hash table ---- */
#define SLOTS 256 /* a power of two, well above the 96 keys */
static uint32_t bench_hash(uint32_t seed) {
    static uint32_t keys[SLOTS], vals[SLOTS];
    for (int i = 0; i < SLOTS; i++) keys[i] = 0; /* 0 marks an empty slot */
    uint32_t inserted[96];
    for (int i = 0; i < 96; i++) {
        uint32_t k = next_rand(&seed) | 1;
        inserted[i] = k;
        uint32_t h = (k * 2654435761u) >> 24;
        while (keys[h] && keys[h] != k) h = (h + 1) & (SLOTS - 1);
        keys[h] = k;
        vals[h] = (uint32_t)i * 7 + 1;
    }
    uint32_t found = 0, sum = 0;
    for (int i = 0; i < 192; i++) {
        uint32_t k = (i & 1) ? inserted[i >> 1] : (next_rand(&seed) & ~1u); /* even keys are never inserted */
        uint32_t h = (k * 2654435761u) >> 24;
        while (keys[h]) {
            if (keys[h] == k) { found++; sum += vals[h]; break; }
            h = (h + 1) & (SLOTS - 1);
        }
    }
    return (found << 16) ^ sum;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: coremark-like ITERATIONS\n"); return 2; }
    char *end;
    long iterations = strtol(argv[1], &end, 10);
    if (*end || iterations < 1) { fprintf(stderr, "coremark-like: ITERATIONS must be a positive integer\n"); return 2; }
    crc_init();
    uint32_t crc = 0;
    uint64_t start = now_ns();
    for (long it = 0; it < iterations; it++) {
        uint32_t seed = (uint32_t)it * 0x9E3779B9u + 1;
        crc = crc_u32(crc, bench_list(seed));
        crc = crc_u32(crc, bench_matrix(seed ^ 0x1234567u));
        crc = crc_u32(crc, bench_state(seed ^ 0x89abcdefu));
        crc = crc_u32(crc, bench_hash(seed ^ 0x5a5a5a5au));
    }
    uint64_t ns = now_ns() - start;
    printf("COREMARKLIKE iterations=%ld ns=%llu checksum=0x%08x\n", iterations, (unsigned long long)ns, crc);
    return 0;
}
