/*
 * oldkernel: run a command as if the kernel were older, for wharf's old-kernel tests.
 *
 *   oldkernel 3.10|4.18 [allow=NR ...] -- COMMAND [ARGS...]
 *
 * Installs a seccomp filter (inherited by every descendant, containers included) under which
 * the syscalls the named kernel does not have fail as they would there:
 *   3.10: every syscall number >= 314 (renameat2, seccomp, getrandom, memfd_create, execveat,
 *         copy_file_range, statx, the mount API, pidfd_*, clone3, close_range, openat2, ...)
 *         returns ENOSYS; open/openat with O_TMPFILE returns EISDIR (3.11); ioctl TIOCGPTPEER
 *         returns ENOTTY (4.13); prctl PR_CAP_AMBIENT returns EINVAL (4.3).
 *   4.18: every syscall number >= 335 returns ENOSYS (pidfd_*, clone3, close_range, openat2,
 *         the mount API, io_uring, ...).
 * allow=NR exempts one syscall number (a distribution backport).
 * What a filter cannot show (files in /proc, cgroup controllers, seccomp's actions_avail) the
 * tests set with WHARF_DISABLE.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_INSNS 128
static struct sock_filter prog[MAX_INSNS];
static int len;

static void emit(struct sock_filter f) {
  if (len == MAX_INSNS) {
    fprintf(stderr, "oldkernel: filter too long\n");
    exit(2);
  }
  prog[len++] = f;
}
#define LOAD(off) emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off)))
#define RETURN(v) emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (v)))
#define JUMP(op, k, t, f) emit((struct sock_filter)BPF_JUMP(BPF_JMP | (op) | BPF_K, (k), (t), (f)))
#define NR_OFF offsetof(struct seccomp_data, nr)
#define ARG_OFF(i) (offsetof(struct seccomp_data, args) + 8 * (i))

/* if (nr == sys && (arg & mask) == value) return errno; falls through otherwise */
static void arg_rule(int sys, int arg, unsigned mask, unsigned value, int err) {
  JUMP(BPF_JEQ, sys, 0, 5);
  LOAD(ARG_OFF(arg));
  emit((struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, mask));
  JUMP(BPF_JEQ, value, 0, 1);
  RETURN(SECCOMP_RET_ERRNO | err);
  LOAD(NR_OFF);
}

int main(int argc, char **argv) {
  int i = 2, old310;
  if (argc < 4 || (strcmp(argv[1], "3.10") && strcmp(argv[1], "4.18"))) {
    fprintf(stderr, "usage: oldkernel 3.10|4.18 [allow=NR ...] -- COMMAND [ARGS...]\n");
    return 2;
  }
  old310 = strcmp(argv[1], "3.10") == 0;
  LOAD(offsetof(struct seccomp_data, arch));
  JUMP(BPF_JEQ, AUDIT_ARCH_X86_64, 1, 0);
  RETURN(SECCOMP_RET_ALLOW);
  LOAD(NR_OFF);
  for (; i < argc && strcmp(argv[i], "--"); i++) {
    if (strncmp(argv[i], "allow=", 6)) {
      fprintf(stderr, "oldkernel: unknown option %s\n", argv[i]);
      return 2;
    }
    JUMP(BPF_JEQ, atoi(argv[i] + 6), 0, 1);
    RETURN(SECCOMP_RET_ALLOW);
  }
  if (++i >= argc) {
    fprintf(stderr, "oldkernel: no command\n");
    return 2;
  }
  if (old310) {
    /* __O_TMPFILE without O_DIRECTORY's bit: 020000000 */
    arg_rule(SYS_open, 1, 020000000, 020000000, EISDIR);
    arg_rule(SYS_openat, 2, 020000000, 020000000, EISDIR);
    arg_rule(SYS_ioctl, 1, 0xffffffff, 0x5441 /* TIOCGPTPEER */, ENOTTY);
    arg_rule(SYS_prctl, 0, 0xffffffff, 47 /* PR_CAP_AMBIENT */, EINVAL);
  }
  JUMP(BPF_JGE, old310 ? 314 : 335, 0, 1);
  RETURN(SECCOMP_RET_ERRNO | ENOSYS);
  RETURN(SECCOMP_RET_ALLOW);

  struct sock_fprog fprog = {.len = (unsigned short)len, .filter = prog};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog)) {
    perror("oldkernel: install filter");
    return 2;
  }
  execvp(argv[i], argv + i);
  perror("oldkernel: exec");
  return 127;
}
