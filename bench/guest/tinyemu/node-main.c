/*
 * TinyEMU's RISC-V machine as a WebAssembly module for Node (bench/peers.ts, Vessel's peer
 * benchmark), compiled with emscripten next to TinyEMU's own sources by bench/lib/tinyemu.ts in
 * place of its browser front end (jsemu.c). Files are read from the host (NODERAWFS); the virtio
 * console writes to stdout; the host queues console input with tinyemu_input() and calls
 * tinyemu_run() from its event loop, so that stdin keeps being read while the guest runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <emscripten.h>

#include "cutils.h"
#include "iomem.h"
#include "virtio.h"
#include "machine.h"

/* Instructions per interpreter slice, as in TinyEMU's temu.c. */
#define SLICE_CYCLES 500000

static VirtMachine *vm;
static uint8_t input[65536];
static int input_len;

static void console_write(void *opaque, const uint8_t *buf, int len)
{
    fwrite(buf, 1, len, stdout);
    fflush(stdout);
}

/* Unused: tinyemu_run hands queued input to the virtio console itself. */
static int console_read(void *opaque, uint8_t *buf, int len)
{
    return 0;
}

static CharacterDevice console = { NULL, console_write, console_read };

/* Queues one byte of console input; returns 0, or -1 when the queue is full. */
EMSCRIPTEN_KEEPALIVE int tinyemu_input(int c)
{
    if (input_len >= (int)sizeof(input))
        return -1;
    input[input_len++] = (uint8_t)c;
    return 0;
}

/* Builds the machine from a TinyEMU configuration file; 0 on success. */
EMSCRIPTEN_KEEPALIVE int tinyemu_start(const char *config_path)
{
    VirtMachineParams p;
    virt_machine_set_defaults(&p);
    virt_machine_load_config_file(&p, config_path, NULL, NULL);
    p.console = &console;
    /* The guest's clock follows the host's, as in temu.c (TinyEMU's default counts cycles). */
    p.rtc_real_time = TRUE;
    vm = virt_machine_init(&p);
    virt_machine_free_config(&p);
    return vm ? 0 : -1;
}

/* Runs `slices` slices of the guest; returns how many ms it may sleep now (0: runnable). */
EMSCRIPTEN_KEEPALIVE int tinyemu_run(int slices)
{
    int i, n;
    for (i = 0; i < slices; i++) {
        if (input_len > 0 && vm->console_dev && virtio_console_can_write_data(vm->console_dev)) {
            n = virtio_console_get_write_len(vm->console_dev);
            if (n > input_len)
                n = input_len;
            if (n > 0) {
                virtio_console_write_data(vm->console_dev, input, n);
                memmove(input, input + n, input_len - n);
                input_len -= n;
            }
        }
        virt_machine_interp(vm, SLICE_CYCLES);
    }
    return virt_machine_get_sleep_duration(vm, 10);
}
