/*
 * A qemu-user TCG plugin: counts the guest instructions executed between stage-cost's marker
 * syscalls (prctl with option "ROOM", side, on/off), per side, and in all; prints them at exit.
 * The region-only equivalent of callgrind's --toggle-collect, for the aarch64 build.
 *
 * At exit: "insn_region: far F near N total T" (sides 0 and 1, what bench/audio/arm64.sh
 * reads), then "insn_regions:" with "SIDE:INSNS/REGIONS" for every side used (0 to SIDES - 1,
 * REGIONS the number of on/off pairs), which bench/display/arm64.sh reads.
 *
 * Built against qemu-plugin.h from Debian's qemu source package (bench/audio/arm64.sh).
 * Counting is inline: each translated block adds its instruction count to a counter when it
 * starts executing (a block left early by a fault would be over-counted; the bench has none).
 * One thread: the counter is not per vCPU.
 */
#include <inttypes.h>
#include <stdio.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define SIDES 16
#define AARCH64_NR_PRCTL 167
#define ROOM 0x524f4f4d

static uint64_t insns;           /* every instruction executed so far */
static uint64_t started[SIDES];  /* insns when the side's region started */
static uint64_t region[SIDES];   /* instructions inside each side's regions */
static uint64_t regions[SIDES];  /* how many regions of each side ended */

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns,
                                             qemu_plugin_tb_n_insns(tb));
}

static void syscall_cb(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    if (num != AARCH64_NR_PRCTL || a1 != ROOM || a2 >= SIDES)
        return;
    if (a3)
        started[a2] = insns;
    else {
        region[a2] += insns - started[a2];
        regions[a2]++;
    }
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    char buf[160];
    snprintf(buf, sizeof buf, "insn_region: far %" PRIu64 " near %" PRIu64 " total %" PRIu64 "\n",
             region[0], region[1], insns);
    qemu_plugin_outs(buf);
    char all[SIDES * 48 + 32];
    int n = snprintf(all, sizeof all, "insn_regions:");
    for (int i = 0; i < SIDES; i++)
        if (regions[i])
            n += snprintf(all + n, sizeof all - n, " %d:%" PRIu64 "/%" PRIu64, i, region[i],
                          regions[i]);
    snprintf(all + n, sizeof all - n, "\n");
    qemu_plugin_outs(all);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, syscall_cb);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
