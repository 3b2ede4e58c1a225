// SPDX-License-Identifier: GPL-2.0
/* Preloaded into test_progs by the harness: a kernel without CONFIG_NET_NS, and output that survives a crash.
 *
 * test_progs saves /proc/self/ns/net when it starts and setns()es back to it after every test; on a kernel built
 * without network namespaces that file does not exist and test_progs exits before its first test. Only then does
 * the open get a descriptor of /dev/null instead, and setns(fd, CLONE_NEWNET) on that descriptor succeeds without
 * doing anything (there is no other namespace to return from). Every other open and setns is the real one.
 *
 * With BPF_AUDIT_HARNESS_LINE_BUFFERED=1 in the environment, stdout is made line-buffered at load. Without -v,
 * test_progs writes to the real stdout only between tests (a test's own output goes to a memory stream), and with
 * stdout a file every result line would otherwise sit in a 4 KiB buffer that a crash or a lost VM throws away.
 * (With -v the harness leaves it alone: there a test's lines go to stdout while the test runs, and a write per
 * line would add system calls to what tests that count their own syscalls see.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char netns_path[] = "/proc/self/ns/net";
static int stand_in_fd = -1;

__attribute__((constructor)) static void line_buffered_stdout(void)
{
	const char *on = getenv("BPF_AUDIT_HARNESS_LINE_BUFFERED");

	if (on && strcmp(on, "1") == 0)
		setvbuf(stdout, NULL, _IOLBF, 0);
}

typedef int (*open_fn)(const char *, int, ...);

static int open_or_stand_in(const char *name, const char *path, int flags, mode_t mode)
{
	open_fn real = (open_fn)dlsym(RTLD_NEXT, name);
	int fd, saved;

	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	fd = real(path, flags, mode);
	if (fd >= 0 || !path || strcmp(path, netns_path) != 0 || errno != ENOENT)
		return fd;
	saved = errno;
	fd = real("/dev/null", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		errno = saved;
		return -1;
	}
	stand_in_fd = fd;
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return open_or_stand_in("open", path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return open_or_stand_in("open64", path, flags, mode);
}

int setns(int fd, int nstype)
{
	int (*real)(int, int) = (int (*)(int, int))dlsym(RTLD_NEXT, "setns");

	if (fd >= 0 && fd == stand_in_fd && nstype == CLONE_NEWNET)
		return 0;
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return real(fd, nstype);
}
