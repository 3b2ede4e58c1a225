// SPDX-License-Identifier: GPL-2.0
/* LD_PRELOAD shim for test_progs on a kernel without CONFIG_NET_NS: test_progs opens /proc/self/ns/net at start
 * and setns()es back to it after every test; with no netns there is nothing to save or restore, so the open gets
 * /dev/null and setns(CLONE_NEWNET) on that fd succeeds doing nothing. Nothing else is touched. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>

static int dummy_fd = -1;

static int fake_open(const char *path, int flags, mode_t mode, const char *sym)
{
	int (*real)(const char *, int, ...) = dlsym(RTLD_NEXT, sym);

	if (path && strcmp(path, "/proc/self/ns/net") == 0) {
		int fd = real(path, flags, mode);

		if (fd >= 0)
			return fd;
		dummy_fd = real("/dev/null", O_RDONLY, 0);
		return dummy_fd;
	}
	return real(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = va_arg(ap, int);
	va_end(ap);
	return fake_open(path, flags, mode, "open");
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = va_arg(ap, int);
	va_end(ap);
	return fake_open(path, flags, mode, "open64");
}

int setns(int fd, int nstype)
{
	int (*real)(int, int) = dlsym(RTLD_NEXT, "setns");

	if (fd >= 0 && fd == dummy_fd && nstype == CLONE_NEWNET)
		return 0;
	return real(fd, nstype);
}
