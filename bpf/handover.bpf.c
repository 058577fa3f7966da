// SPDX-License-Identifier: GPL-2.0
/*
 * A followed socket handed to another process: its fd sent in an SCM_RIGHTS message over a
 * UNIX socket.  What the receiver writes on it is seen only if the receiver is traced too;
 * the hand-over is reported either way (a record naming both processes), so frames sent by
 * an untraced receiver are never a silent gap.  Read at sendmsg entry, while the fds in the
 * control message are still the sender's.
 */
#include "lib/common.bpf.h"

#define WS_AF_UNIX 1
#define WS_SOL_SOCKET 1
#define WS_SCM_RIGHTS 1
/* Control messages and fds looked at per sendmsg: a hand-over passes one or a few. */
#define SCM_CMSGS_MAX 4
#define SCM_FDS_MAX 8

struct ws_cmsghdr {
	__u64 cmsg_len;
	int cmsg_level;
	int cmsg_type;
};

/* The pid at the other end of a connected UNIX socket fd, 0 when unknown. */
static __always_inline __u32 unix_peer_pid(__u32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file **fds, *file;
	struct socket *sock;
	struct sock *sk;

	if (fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != WS_AF_UNIX)
		return 0;
	return BPF_CORE_READ(sk, sk_peer_pid, numbers[0].nr);
}

static __always_inline void passed_emit(__u32 fd, __u32 peer_pid)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sock_ref ref;
	struct conn_info *c;
	struct evt_conn *e;

	if (sock_from_fd(fd, &ref))
		return;
	c = bpf_map_lookup_elem(&conn_map, &ref.ino);
	if (!c)
		return;
	e = evt_reserve(sizeof(*e), EVT_CONN_PASSED);
	if (!e)
		return;
	e->conn.ino = ref.ino;
	e->conn.gen = c->gen;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->fd = fd;
	e->peer_pid = peer_pid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	sock_fill_tuple(ref.sk, e);
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	count_stat(STAT_EVENTS, 1);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int scm_rights_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct user_msghdr msg;
	struct ws_cmsghdr cm;
	__u64 off = 0, n;
	__u32 peer = 0;
	int fd;

	if (!tgid_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)ctx->args[1]) || !msg.msg_control ||
	    msg.msg_controllen < sizeof(cm))
		return 0;
	for (int i = 0; i < SCM_CMSGS_MAX; i++) {
		if (off + sizeof(cm) > msg.msg_controllen)
			break;
		if (bpf_probe_read_user(&cm, sizeof(cm), msg.msg_control + off) ||
		    cm.cmsg_len < sizeof(cm))
			break;
		if (cm.cmsg_level == WS_SOL_SOCKET && cm.cmsg_type == WS_SCM_RIGHTS) {
			if (!peer)
				peer = unix_peer_pid(ctx->args[0]);
			n = (cm.cmsg_len - sizeof(cm)) / sizeof(int);
			for (int j = 0; j < SCM_FDS_MAX; j++) {
				if (j >= n)
					break;
				if (bpf_probe_read_user(&fd, sizeof(fd),
							msg.msg_control + off + sizeof(cm) +
								j * sizeof(int)))
					break;
				passed_emit(fd, peer);
			}
		}
		off += (cm.cmsg_len + 7) & ~7ULL;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
