/* SPDX-License-Identifier: GPL-2.0 */
/* Conformance-case annotations, bpf_audit kfunc declarations and helpers: the case-writer's manual. */
#ifndef __BPF_AUDIT_HARNESS_H__
#define __BPF_AUDIT_HARNESS_H__

/*
 * MANUAL
 * ======
 *
 * A case file is cases/<group>/<name>.bpf.c. It starts with an SPDX line
 * and a one-line purpose, includes only this header, and holds one or more
 * programs (SEC("...") functions). Every program is one pytest item; every
 * program must carry annotations (a file that mixes annotated and bare
 * programs is rejected at collection). Annotations go between SEC("...")
 * and the function (or just above SEC), like the kernel's own
 * tools/testing/selftests/bpf/progs/bpf_misc.h:
 *
 *     #include "harness.h"
 *
 *     SEC("lsm/file_open")
 *     __description("rule 1: a context started and never ended is rejected")
 *     __rule(1) __needs("bpf_audit")
 *     __failure __msg("Unreleased reference")
 *     int BPF_PROG(unreleased_missing_end, struct file *file)
 *     { ... }
 *
 * The harness reads annotations from the SOURCE TEXT (harness/cases/),
 * before compiling, so a malformed one is reported as file:line. Hence:
 * every argument must be a plain C string literal (or adjacent literals
 * "a" "b"), except the integer of __rule and __expect_errno; macros are NOT
 * expanded inside annotations. The macros below also put each annotation
 * into BTF as a decl tag ("comment:..."), so `bpftool btf dump file x.o`
 * shows what a program expects.
 *
 * How the harness runs one program
 * --------------------------------
 * It opens the file's object, turns autoload off for every other program,
 * and loads this one (privileged unless __drop_caps). Audit records are
 * captured from just before the load until the program has been unloaded
 * (the harness waits for its AUDIT_BPF op=UNLOAD record).
 *  - __failure: load must fail; every __msg must appear. Nothing is run.
 *  - __success without __trigger/__expect_*: load must succeed (load-only:
 *    the "accepted twin" of a rejection case).
 *  - __success with __trigger or record expectations: load, attach, run
 *    the trigger (if any), detach, unload, then check the errno and the
 *    captured records.
 *
 * Verdict
 * -------
 * __success                Loading must succeed.
 *                              __success
 * __failure                Loading must fail. Needs at least one __msg:
 *                          a rejection must name the message that proves
 *                          it was rejected for the rule, not by accident.
 *                              __failure __msg("Unreleased reference")
 * __msg("substring")       Expected in the verifier's log (repeatable;
 *                          matched in the order written). A load that
 *                          failed before the verifier ran (libbpf could not
 *                          resolve an extern, BTF refused) has no verifier
 *                          log and fails the case, whatever libbpf printed.
 *                          {{regex}} inside the string is a Python regular
 *                          expression, the rest is literal:
 *                              __msg("Unreleased reference id={{[0-9]+}}")
 *                          Only on __failure cases. Refused at collection:
 *                          a message with no literal word of three letters
 *                          ("{{.*}}", " "), or one that is only the name of
 *                          a function the program calls (the verifier's
 *                          log prints every call it walks).
 * __libbpf_msg("substring")
 *                          Expected in libbpf's own output (what it printed
 *                          while opening and loading the object), in order;
 *                          for what libbpf does before the verifier, e.g.
 *                          retrying without BTF the kernel refused. Never
 *                          alone: the case still names a verifier __msg.
 * __msg_since("V", "substring")
 * __msg_before("V", "substring")
 *                          The same, only on kernels whose version is >= V
 *                          (since) or < V (before); V is "major.minor" or
 *                          "major.minor.patch", compared number by number
 *                          with the kernel under test's release (7.3.4 >=
 *                          7.3; 6.12.118 < 7.3). For a rejection the
 *                          verifier words differently on different lines:
 *                          name each line's words, so that the case proves
 *                          the rule on every kernel. The suite splits at
 *                          7.3, the first line known to name registers
 *                          (R1) where 6.12 names arguments (arg#0). Written in order with
 *                          the plain __msg ones; the harness keeps those
 *                          that apply to the kernel under test, in order.
 *                          Every kernel version must get at least one
 *                          message (checked at collection):
 *                              __failure
 *                              __msg_before("7.3", "Possibly NULL pointer
 *                                           passed to trusted arg0")
 *                              __msg_since("7.3", "Possibly NULL pointer
 *                                          passed to trusted R1")
 *
 * Identity
 * --------
 * __description("text")    Required, once. What the case proves, shown in
 *                          reports. If it tests a rule the spec "decides
 *                          here", say so in the text too.
 *                              __description("rule 1: start without end
 *                                             is rejected")
 * __rule(N)                Spec rule checked (1-20; integer, no quotes).
 *                          Repeatable: __rule(9) __rule(10). Baseline cases
 *                          (upstream behaviour) have none.
 * __decided                The rule is one the spec marks "decided here"
 *                          (11: fields in call order is a promise; 20: a
 *                          field the program did not log never appears): a
 *                          kernel that decides differently fails this case
 *                          loudly. Needs __rule; required (with "decided
 *                          here" in the description) when a __rule is 11
 *                          or 20, refused on the others (they are RFC v1
 *                          or review rules).
 *                              __rule(20) __decided
 *
 * Requirements
 * ------------
 * __needs("feature", ...)  Skip unless the kernel/toolchain has it:
 *                            "bpf_audit"     bpf_audit_log_start in vmlinux
 *                                            BTF (the series is applied).
 *                                            Required when the program calls
 *                                            a bpf_audit_* kfunc.
 *                            "bpf_lsm"       bpf in the active LSM list.
 *                            "btf_type_tag"  the compiler emits
 *                                            btf_type_tag (clang >= 15;
 *                                            every __kptr case).
 *                            "task_kfuncs"   bpf_task_acquire/_release in
 *                                            vmlinux BTF (6.2+; Debian's
 *                                            6.1 lacks them).
 *                          __needs("bpf_audit", "btf_type_tag")
 * __drop_caps("cap", ...)  Load with these capabilities dropped (lower
 *                          case, no CAP_ prefix), everything else as usual:
 *                              __drop_caps("sys_boot")
 *
 * Run (only on __success cases)
 * -----------------------------
 * __trigger("action", "key=value", ...)
 *                          What the harness does after attaching. Without
 *                          __trigger a case with record expectations is
 *                          loaded, attached and detached with no trigger.
 *                          Built-in actions run in a child process of the
 *                          guest agent whose comm is set (PR_SET_NAME) to
 *                          comm=... right before the syscall, so a program
 *                          can filter on its own trigger. Files named by
 *                          path= are created (empty, parents too) before the
 *                          program is attached, unless they exist.
 *                            open        path= [flags=r|w|rw] [comm=]
 *                                        [thread=1] (open(2) from a second
 *                                        thread: its tid is not ${pid})
 *                            read        path= [comm=]  (open + read(2))
 *                            mprotect    [prot=r|rw|rx] [comm=]  (anon page)
 *                            connect     family=inet|inet6|unix
 *                                        inet/inet6: addr= port=
 *                                        unix: path=
 *                                        [type=stream|dgram]
 *                                        [bind_addr= bind_port=] (bind first)
 *                                        [comm=]
 *                            bind        family=inet|inet6|unix (bind(2)
 *                                        alone, no connect: socket_bind)
 *                                        inet/inet6: addr= port=
 *                                        unix: path= (absolute; removed
 *                                        before and after)
 *                                        [type=stream|dgram] [comm=]
 *                            getsockopt  family=inet|inet6|unix: a stream
 *                                        socket bound as for bind, then
 *                                        getsockopt(SOL_SOCKET,
 *                                        SO_REUSEADDR): socket_getsockopt
 *                                        [connect=self] (inet/inet6: first
 *                                        connect to its own address, so
 *                                        laddr=faddr, lport=fport)
 *                                        [comm=]
 *                            ioctl       path= cmd=0x541b [comm=]
 *                            kill        sig=N|SIGxxx [target_comm=] [comm=]
 *                                        (signals a child it started)
 *                            unlink      path= [comm=]
 *                            readlink    path= [comm=] (readlink(2) of a
 *                                        link that exists, never created:
 *                                        inode_readlink; /proc/self/exe
 *                                        is the trigger's own)
 *                            getpgid     [comm=] (getpgid(own pid):
 *                                        task_getpgid on itself)
 *                            sethostname [name=] [comm=] (default: current)
 *                            shell       cmd=... (sh -c; no comm=)
 *                              __trigger("open", "path=/tmp/bah/x",
 *                                        "comm=bah_open")
 * __expect_errno(N)        errno of the trigger's syscall: 0 = it succeeded,
 *                          1 or EPERM = denied with -EPERM. Needs __trigger.
 *                          Unchecked when absent.
 *                              __expect_errno(EPERM)
 * __audit_disabled         Run the trigger with audit disabled
 *                          (auditctl -e 0 before, previous state after).
 *                              __audit_disabled __expect_errno(0)
 *
 * Records (only on __success cases)
 * ---------------------------------
 * __expect_record("TYPE", "check", ...)
 *                          At least one captured record of TYPE satisfies
 *                          every check. TYPE is a name from the kernel's
 *                          include/uapi/linux/audit.h with or without AUDIT_
 *                          ("BPF_LSM_ACCESS", "BPF", "SYSCALL") or a number
 *                          ("1334"). Checks:
 *                            "field=value"  present, decoded value equal
 *                                           (quotes removed, hex decoded);
 *                                           {{regex}} parts allowed (the
 *                                           whole value must match)
 *                            "raw:field=v"  the on-the-wire text equals v,
 *                                           e.g. "raw:comm=\"bah\"" or the
 *                                           uppercase hex "raw:comm=6120"
 *                            "field"        present
 *                            "!field"       absent
 *                            "count=N"      exactly N records of TYPE pass
 *                                           all checks (default: >= 1)
 *                            "order=a,b,c"  these fields appear in this
 *                                           relative order
 *                            "leading=a,b"  the record's first fields are
 *                                           exactly a, b (in that order)
 *                            "fields=a,b"   the record's fields are exactly
 *                                           a, b: nothing before, between
 *                                           or after (a repeated name is
 *                                           written as often as it occurs)
 *                            "once=a,b"     each of these occurs once
 *                            "same_event=T" shares its serial with a record
 *                                           matched by this case's
 *                                           __expect_record("T", ...)
 *                                           (SYSCALL records exist only
 *                                           while an audit rule is loaded;
 *                                           the harness loads one)
 *                          Values may use ${prog_id} (the id the loader got),
 *                          ${pid} and ${comm} (the trigger process's tgid and
 *                          comm), ${target_pid} (kill's target), ${ino} (the
 *                          inode of the file open, read, ioctl, unlink or
 *                          readlink used: the link itself for readlink).
 *                              __expect_record("BPF_LSM_ACCESS",
 *                                  "prog-id=${prog_id}", "cause=denied",
 *                                  "leading=prog-id,pid,comm", "count=1")
 * __expect_no_record("TYPE", "check", ...)
 *                          No captured record of TYPE satisfies the checks
 *                          (none at all when only TYPE is given). Same
 *                          checks as above, except count/same_event
 *                          and !field.
 *                              __expect_no_record("BPF_LSM_ACCESS",
 *                                                 "prog-id=${prog_id}")
 *
 * Helpers
 * -------
 * harness_comm_is("bah_x")           current task's comm equals "bah_x"
 * harness_dentry_name_is(d, "x")     d->d_name is "x" (up to 31 bytes)
 * harness_file_name_is(f, "x")       f's dentry name is "x"
 * Programs that run must filter to their trigger (comm, and the file name
 * for file hooks) and deny only the trigger's own access.
 *
 * Writing cases
 * -------------
 * - Every rejection has an accepted twin: the same program with the one
 *   thing fixed, __success, in the same file. It proves the rejection is
 *   about the rule (e.g. a clang that drops type tags would make a kptr
 *   rejection "pass" for the wrong reason; its twin then fails).
 * - An object whose BTF the kernel refuses (a __kptr to a type without a
 *   destructor) takes every program in it down: give such a case its own
 *   file (verifier/kptr_store.bpf.c and its twin kptr_store_task.bpf.c).
 * - A runtime case reports what a kfunc returned through the record itself,
 *   e.g. bpf_audit_log_cause(ac, "again_einval") only when the second
 *   call returned -EINVAL, then expects "cause=again_einval".
 * - A case asserts only what the spec says (and names the rule). What the
 *   reference series happens to do beyond it (e.g. whether a call that
 *   failed on its arguments leaves its kind free for a later call) is not
 *   a case: another conforming kernel may do it differently.
 * - Programs call bpf_audit_log_start() (no argument: the kernel supplies
 *   the calling program). harness_audit_start() is its old name, kept for
 *   programs written before the RFC's API.
 * - cases/README.md maps each row of the spec's RFC-selftest table to the
 *   case(s) covering it; keep it current when adding or renaming a case.
 */

/* bpftool >= 7.3 can emit kfunc prototypes into vmlinux.h; ours follow. */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define __H_STR(x) #x
#define __H_XSTR(x) __H_STR(x)
#define __H_TAG(text) __attribute__((btf_decl_tag(text)))

/* Annotations: names of the bpf_misc.h ones kept where they mean the same. */
#define __description(desc)	__H_TAG("comment:test_description=" desc)
#define __success		__H_TAG("comment:test_expect_success")
#define __failure		__H_TAG("comment:test_expect_failure")
#define __msg(msg)		__H_TAG("comment:test_expect_msg=" __H_XSTR(__COUNTER__) "=" msg)
#define __msg_since(v, msg)	__H_TAG("comment:audit_msg_since=" __H_XSTR(__COUNTER__) "=" v "=" msg)
#define __msg_before(v, msg)	__H_TAG("comment:audit_msg_before=" __H_XSTR(__COUNTER__) "=" v "=" msg)
#define __libbpf_msg(msg)	__H_TAG("comment:audit_libbpf_msg=" __H_XSTR(__COUNTER__) "=" msg)
#define __rule(n)		__H_TAG("comment:audit_rule=" #n)
#define __decided		__H_TAG("comment:audit_decided")
#define __needs(...)		__H_TAG("comment:audit_needs=" #__VA_ARGS__)
#define __drop_caps(...)	__H_TAG("comment:audit_drop_caps=" #__VA_ARGS__)
#define __trigger(...)		__H_TAG("comment:audit_trigger=" #__VA_ARGS__)
#define __expect_record(...)	__H_TAG("comment:audit_expect_record=" __H_XSTR(__COUNTER__) "=" #__VA_ARGS__)
#define __expect_no_record(...)	__H_TAG("comment:audit_expect_no_record=" __H_XSTR(__COUNTER__) "=" #__VA_ARGS__)
#define __expect_errno(n)	__H_TAG("comment:audit_expect_errno=" #n)
#define __audit_disabled	__H_TAG("comment:audit_disabled")

/*
 * The context is opaque to BPF. An unpatched vmlinux.h lacks it; a patched
 * one defines it. A forward declaration is valid C in both cases.
 */
struct bpf_audit_context;

/*
 * The bpf_audit kfuncs, with the spec's signatures (the RFC's API, the same
 * on every kernel line that carries the series). __weak so that an
 * object whose other programs use them still loads (those programs not
 * autoloaded) on a kernel without the series; the harness skips the
 * programs that need them via __needs("bpf_audit").
 */
extern struct bpf_audit_context *bpf_audit_log_start(void) __ksym __weak;
extern void bpf_audit_log_end(struct bpf_audit_context *ac) __ksym __weak;
extern int bpf_audit_log_cause(struct bpf_audit_context *ac, const char *cause__str) __ksym __weak;
extern int bpf_audit_log_cap(struct bpf_audit_context *ac, int cap) __ksym __weak;
extern int bpf_audit_log_path(struct bpf_audit_context *ac, const struct path *path) __ksym __weak;
extern int bpf_audit_log_file(struct bpf_audit_context *ac, struct file *file) __ksym __weak;
extern int bpf_audit_log_ioctl_op(struct bpf_audit_context *ac, struct file *file, u16 cmd) __ksym __weak;
extern int bpf_audit_log_dentry(struct bpf_audit_context *ac, struct dentry *dentry) __ksym __weak;
extern int bpf_audit_log_inode(struct bpf_audit_context *ac, struct inode *inode) __ksym __weak;
extern int bpf_audit_log_task(struct bpf_audit_context *ac, struct task_struct *tsk) __ksym __weak;
extern int bpf_audit_log_net_sock(struct bpf_audit_context *ac, int netif, const struct socket *sock) __ksym __weak;
extern int bpf_audit_log_net_sockaddr(struct bpf_audit_context *ac, int netif,
				      const struct sockaddr *saddr__nullable,
				      const struct sockaddr *daddr__nullable, int addrlen) __ksym __weak;

/* Existing kfuncs the accepted twins use (upstream since 6.2). */
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/* vmlinux.h carries no macros: the constants cases need. */
#ifndef EPERM
#define EPERM		1
#endif
#ifndef ENOENT
#define ENOENT		2
#endif
#ifndef EINVAL
#define EINVAL		22
#endif
#ifndef EAFNOSUPPORT
#define EAFNOSUPPORT	97
#endif
#ifndef SOL_SOCKET
#define SOL_SOCKET	1
#endif
#ifndef SO_REUSEADDR
#define SO_REUSEADDR	2
#endif
#ifndef AF_UNIX
#define AF_UNIX		1
#endif
#ifndef AF_INET
#define AF_INET		2
#endif
#ifndef AF_INET6
#define AF_INET6	10
#endif
#define HARNESS_CAP_SYS_ADMIN	21
#define HARNESS_CAP_SYSLOG	34	/* open("/proc/kallsyms") asks capable() for it */
#define HARNESS_LO_IFINDEX	1	/* "lo": always ifindex 1 in a fresh network namespace */
#define HARNESS_TCGETS		0x5401
#define HARNESS_COMM_LEN	16
#define HARNESS_NAME_LEN	32

/* The old name of bpf_audit_log_start() (programs written before the RFC's API): new cases call it directly. */
#define harness_audit_start()	bpf_audit_log_start()

static __always_inline int harness_streq(const char *have, const char *want, int len)
{
	for (int i = 0; i < len; i++) {
		if (have[i] != want[i])
			return 0;
		if (!want[i])
			return 1;
	}
	return 0;
}

/* Does the current task's comm equal `want` (a literal of at most 15 bytes)? */
static __always_inline int harness_comm_is(const char *want)
{
	char comm[HARNESS_COMM_LEN];

	if (bpf_get_current_comm(comm, sizeof(comm)))
		return 0;
	return harness_streq(comm, want, HARNESS_COMM_LEN);
}

/* Is the dentry's last path component `want` (a literal of at most 31 bytes)? */
static __always_inline int harness_dentry_name_is(struct dentry *dentry, const char *want)
{
	char name[HARNESS_NAME_LEN];

	if (!dentry)
		return 0;
	if (bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(dentry, d_name.name)) < 0)
		return 0;
	return harness_streq(name, want, HARNESS_NAME_LEN);
}

static __always_inline int harness_file_name_is(struct file *file, const char *want)
{
	return harness_dentry_name_is(BPF_CORE_READ(file, f_path.dentry), want);
}

#endif /* __BPF_AUDIT_HARNESS_H__ */
