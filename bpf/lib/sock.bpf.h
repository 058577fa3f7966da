/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fd -> struct file -> struct socket -> struct sock, with CO-RE reads only, so that it works
 * from syscall tracepoints without kprobes.
 */
#ifndef WSAUDIT_SOCK_BPF_H
#define WSAUDIT_SOCK_BPF_H

#define WS_AF_INET 2
#define WS_AF_INET6 10
#define WS_S_IFMT 00170000
#define WS_S_IFSOCK 0140000
#define WS_SOCK_STREAM 1
#define WS_IPPROTO_TCP 6
#define WS_SEND_SHUTDOWN 2

struct sock_ref {
	__u64 ino;
	struct file *file;
	struct sock *sk;
	__u16 family;
};

/* Kernels before 6.13 count a file's references in f_count. */
struct file___fcount {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

/*
 * Whether the file has references besides the fd being closed: another fd (dup, dup2,
 * SCM_RIGHTS), another process (fork) or a syscall under way.  Closing one of them does not
 * close the socket, so it must not end the connection.
 */
static __always_inline bool file_shared(struct file *file)
{
	if (bpf_core_field_exists(file->f_ref)) {
		/* file_ref_t: 0 is one reference; negative values are the dead zones. */
		long refs = BPF_CORE_READ(file, f_ref.refcnt.counter);

		return refs > 0;
	}
	return BPF_CORE_READ((struct file___fcount *)file, f_count.counter) > 1;
}

/* 0 when fd is a TCP socket (IPv4 or IPv6), -1 when it is something else or unreadable. */
static __always_inline int sock_from_fd(__u32 fd, struct sock_ref *out)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file **fds;
	struct file *file;
	struct socket *sock;
	struct inode *inode;
	struct sock *sk;
	unsigned int max_fds;
	__u16 family;
	umode_t mode;

	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if (fd >= max_fds)
		return -1;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file) {
		count_drop(DROP_FD_RESOLVE);
		return -1;
	}
	inode = BPF_CORE_READ(file, f_inode);
	mode = BPF_CORE_READ(inode, i_mode);
	if ((mode & WS_S_IFMT) != WS_S_IFSOCK)
		return -1;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, type) != WS_SOCK_STREAM)
		return -1;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return -1;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != WS_AF_INET && family != WS_AF_INET6)
		return -1;
	if (BPF_CORE_READ(sk, sk_protocol) != WS_IPPROTO_TCP)
		return -1;
	out->file = file;
	out->sk = sk;
	out->family = family;
	out->ino = BPF_CORE_READ(inode, i_ino);
	return 0;
}

static __always_inline void sock_fill_tuple(struct sock *sk, struct evt_conn *e)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == WS_AF_INET) {
		bpf_core_read(e->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(e->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(e->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

#endif /* WSAUDIT_SOCK_BPF_H */
