/*
 * 4 KiB random reads from a block device with O_DIRECT (no guest page cache), for bench/disk.ts.
 * Usage: randread DEVICE COUNT SEED. Prints "RANDREAD ops=N bytes=B ns=T checksum=C".
 * The offsets come from a fixed xorshift sequence, so both engines read the same blocks.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: randread DEVICE COUNT SEED\n"); return 2; }
    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) { perror(argv[1]); return 1; }
    uint64_t size = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) != 0 || size < 4096) { perror("BLKGETSIZE64"); return 1; }
    long count = atol(argv[2]);
    uint64_t x = strtoull(argv[3], NULL, 10) | 1, blocks = size / 4096, sum = 0;
    void *buf;
    if (posix_memalign(&buf, 4096, 4096) != 0) return 1;
    uint64_t t0 = now_ns();
    for (long i = 0; i < count; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if (pread(fd, buf, 4096, (off_t)((x % blocks) * 4096)) != 4096) { perror("pread"); return 1; }
        sum += ((uint64_t *)buf)[i & 511];
    }
    uint64_t t1 = now_ns();
    printf("RANDREAD ops=%ld bytes=%ld ns=%llu checksum=%llx\n", count, count * 4096L,
           (unsigned long long)(t1 - t0), (unsigned long long)sum);
    return 0;
}
