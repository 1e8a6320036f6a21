/*
 * An LD_PRELOAD library for the aarch64 build under qemu-user (bench/e2ee/run.sh): makes the
 * program see a CPU without the ARMv8 crypto extensions, as on a Raspberry Pi 4 (BCM2711,
 * Cortex-A72 without them: its kernel reports "fp asimd evtstrm crc32 cpuid").
 *
 * Every CPU model of qemu-aarch64 7.2 (cortex-a72 included) advertises AES, PMULL, SHA1 and
 * SHA2, and none can switch them off. The `aes` and `polyval` crates (through cpufeatures) and
 * std's is_aarch64_feature_detected! ask getauxval(AT_HWCAP) at run time; this getauxval takes
 * the crypto bits out of the answer, so the unchanged build takes the path a Pi 4 takes: the
 * crates' software backends. (qemu still executes AES instructions if anything used them
 * regardless: the instruction counts show it did not.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/auxv.h>

unsigned long getauxval(unsigned long type)
{
    static unsigned long (*real)(unsigned long);
    if (!real)
        real = (unsigned long (*)(unsigned long))dlsym(RTLD_NEXT, "getauxval");
    unsigned long v = real(type);
    if (type == AT_HWCAP)
        v &= ~(unsigned long)(HWCAP_AES | HWCAP_PMULL | HWCAP_SHA1 | HWCAP_SHA2 | HWCAP_SHA3 |
                              HWCAP_SHA512 | HWCAP_SM3 | HWCAP_SM4);
    return v;
}
