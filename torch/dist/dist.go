// Package dist runs collectives on PyTorch's own distributed runtime, c10d:
// a TCPStore for rendezvous, a gloo ProcessGroup for all-reduce, broadcast
// and barrier, the DDP Reducer for bucketed gradient averaging overlapped
// with backward, and SyncBatchNorm. A Go process and a Python process
// (torch.distributed) meet in one group over the same store.
//
// Every blocking call is bounded by the timeout the store or group was made
// with: a rank that dies makes the others' calls fail at once (the
// connection closes), one that hangs makes them fail when the timeout ends.
package dist

/*
#include <stdlib.h>
#include "dist.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/jmedseg/jmedseg/torch"
)

// ReduceOp is an all-reduce operation.
type ReduceOp int

// Reduce operations (c10d::ReduceOp's).
const (
	Sum     ReduceOp = C.JD_SUM
	Avg     ReduceOp = C.JD_AVG // a sum divided by the group size
	Product ReduceOp = C.JD_PRODUCT
	Min     ReduceOp = C.JD_MIN
	Max     ReduceOp = C.JD_MAX
)

// takeErr converts and frees a shim error (nil stays nil) into the
// torch.Error every operation returns.
func takeErr(e *C.jt_error, op string, inputs ...*torch.Tensor) error {
	if e == nil {
		return nil
	}
	msg := C.GoString(e.msg)
	kind := torch.ErrorKind(e.kind)
	C.jt_error_free(e)
	var desc []string
	for _, t := range inputs {
		desc = append(desc, t.String())
	}
	return &torch.Error{Op: "dist." + op, Inputs: desc, Msg: msg, Kind: kind}
}

// checkArgs refuses nil, failed and freed tensors before a C call.
func checkArgs(op string, ts ...*torch.Tensor) error {
	for i, t := range ts {
		if err := t.Err(); err != nil {
			return fmt.Errorf("dist.%s: input %d: %w", op, i, err)
		}
		if !t.Valid() {
			return fmt.Errorf("dist.%s: input %d: %w", op, i, torch.ErrFreed)
		}
	}
	return nil
}

// HasBackend reports whether this build can make groups of backend
// ("gloo"; "nccl" needs a CUDA libtorch and is not built in).
func HasBackend(backend string) bool {
	cs := C.CString(backend)
	defer C.free(unsafe.Pointer(cs))
	return C.jd_has_backend(cs) != 0
}

// Store is a c10d key-value store (a TCPStore, or a prefixed view of one).
type Store struct {
	h      C.jd_store
	parent *Store // a prefix view keeps its store alive
}

// NewTCPStore starts the TCPStore server on port (master) or connects to
// host:port, trying until timeout, which also bounds every Get. world is the
// number of ranks that will use it (0: unknown).
func NewTCPStore(host string, port, world int, master bool, timeout time.Duration) (*Store, error) {
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var h C.jd_store
	m := 0
	if master {
		m = 1
	}
	if err := takeErr(C.jd_store_new(ch, C.int(port), C.int(world), C.int(m), C.int64_t(timeout.Milliseconds()), &h), "tcp_store"); err != nil {
		return nil, err
	}
	return &Store{h: h}, nil
}

// Prefix returns a view of s whose keys all start with prefix
// (c10d::PrefixStore), for several groups or jobs on one store.
func (s *Store) Prefix(prefix string) (*Store, error) {
	cp := C.CString(prefix)
	defer C.free(unsafe.Pointer(cp))
	var h C.jd_store
	if err := takeErr(C.jd_store_prefix(s.h, cp, &h), "prefix_store"); err != nil {
		return nil, err
	}
	return &Store{h: h, parent: s}, nil
}

// Set stores value under key.
func (s *Store) Set(key string, value []byte) error {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	if len(value) > 0 {
		p = C.CBytes(value)
		defer C.free(p)
	}
	return takeErr(C.jd_store_set(s.h, ck, p, C.int64_t(len(value))), "store_set")
}

// Get waits for key (up to the store's timeout) and returns its value.
func (s *Store) Get(key string) ([]byte, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	var n C.int64_t
	if err := takeErr(C.jd_store_get(s.h, ck, &p, &n), "store_get"); err != nil {
		return nil, err
	}
	defer C.jd_bytes_free(p)
	return C.GoBytes(p, C.int(n)), nil
}

// Add adds delta to the counter under key (created at 0) and returns the sum.
func (s *Store) Add(key string, delta int64) (int64, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var out C.int64_t
	if err := takeErr(C.jd_store_add(s.h, ck, C.int64_t(delta), &out), "store_add"); err != nil {
		return 0, err
	}
	return int64(out), nil
}

// Has reports whether key is set, without waiting.
func (s *Store) Has(key string) (bool, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var out C.int
	if err := takeErr(C.jd_store_check(s.h, ck, &out), "store_check"); err != nil {
		return false, err
	}
	return out != 0, nil
}

// Close releases the store (the server stops with the last reference).
func (s *Store) Close() {
	if s != nil && s.h != nil {
		C.jd_store_free(s.h)
		s.h = nil
	}
}

// GroupOptions configure NewGroup.
type GroupOptions struct {
	Backend string // "gloo" (the default)
	// Interface is the address or host name gloo binds for its connections
	// (default: this machine's host name), or "iface=NAME" for a network
	// interface, as GLOO_SOCKET_IFNAME.
	Interface string
	Threads   int           // gloo's worker threads (0: 2)
	Timeout   time.Duration // bounds the rendezvous and every collective (0: 30 minutes, PyTorch's default)
}

// Group is a process group: Size ranks that run collectives together. Its
// methods must be called in the same order on every rank.
type Group struct {
	h       C.jd_group
	store   *Store
	rank    int
	size    int
	timeout time.Duration
	owned   []*Store // closed with the group (Init's stores)
}

// NewGroup joins rank to a group of size ranks over store; it returns once
// every rank has joined (or the timeout passed).
func NewGroup(store *Store, rank, size int, opt GroupOptions) (*Group, error) {
	if opt.Backend == "" {
		opt.Backend = "gloo"
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Minute
	}
	cb, ci := C.CString(opt.Backend), C.CString(opt.Interface)
	defer C.free(unsafe.Pointer(cb))
	defer C.free(unsafe.Pointer(ci))
	var h C.jd_group
	if err := takeErr(C.jd_group_new(store.h, C.int(rank), C.int(size), cb, ci, C.int(opt.Threads), C.int64_t(opt.Timeout.Milliseconds()), &h), "new_group"); err != nil {
		return nil, err
	}
	return &Group{h: h, store: store, rank: rank, size: size, timeout: opt.Timeout}, nil
}

// Rank is this process's rank in the group, from 0.
func (g *Group) Rank() int { return g.rank }

// Size is the number of ranks.
func (g *Group) Size() int { return g.size }

// Timeout is the bound on each collective.
func (g *Group) Timeout() time.Duration { return g.timeout }

func handles(op string, ts []*torch.Tensor) ([]C.jt_tensor, error) {
	if err := checkArgs(op, ts...); err != nil {
		return nil, err
	}
	hs := make([]C.jt_tensor, len(ts))
	for i, t := range ts {
		hs[i] = C.jt_tensor(t.CHandle())
	}
	return hs, nil
}

func first(hs []C.jt_tensor) *C.jt_tensor {
	if len(hs) == 0 {
		return nil
	}
	return &hs[0]
}

// AllReduce reduces ts in place over the group: afterwards every rank
// holds op of every rank's values. The tensors (one dtype) travel in one
// collective.
func (g *Group) AllReduce(op ReduceOp, ts ...*torch.Tensor) error {
	hs, err := handles("all_reduce", ts)
	if err != nil {
		return err
	}
	err = takeErr(C.jd_allreduce(g.h, first(hs), C.int(len(hs)), C.int(op)), "all_reduce", ts...)
	runtime.KeepAlive(ts)
	return err
}

// Broadcast copies root's ts into every rank's ts, in place.
func (g *Group) Broadcast(root int, ts ...*torch.Tensor) error {
	hs, err := handles("broadcast", ts)
	if err != nil {
		return err
	}
	err = takeErr(C.jd_broadcast(g.h, first(hs), C.int(len(hs)), C.int(root)), "broadcast", ts...)
	runtime.KeepAlive(ts)
	return err
}

// Barrier returns once every rank has called it.
func (g *Group) Barrier() error { return takeErr(C.jd_barrier(g.h), "barrier") }

// Close leaves the group, and closes the stores Init made for it.
func (g *Group) Close() {
	if g != nil && g.h != nil {
		C.jd_group_free(g.h)
		g.h = nil
		for _, s := range g.owned {
			s.Close()
		}
		g.owned = nil
	}
}

// Reducer averages the gradients of a set of parameters over a group, as
// torch.nn.parallel.DistributedDataParallel does: c10d's Reducer puts them
// in buckets (about BucketBytes each, the first 1 MiB) and all-reduces each
// bucket from autograd hooks as soon as its last gradient is ready, while
// backward goes on; when backward returns, every parameter's grad holds
// the group's mean.
type Reducer struct {
	h      C.jd_reducer
	g      *Group
	params []*torch.Tensor
}

// DefaultBucketBytes is DDP's bucket_cap_mb (25 MiB).
const DefaultBucketBytes = 25 << 20

// NewReducer registers params (leaves that require grad, in the same order
// on every rank) with a Reducer over g. findUnused lets some parameters go
// without a gradient in an iteration (DDP's find_unused_parameters: the
// graph is walked from the outputs PrepareBackward gets).
func NewReducer(g *Group, params []*torch.Tensor, bucketBytes int64, findUnused bool) (*Reducer, error) {
	if len(params) == 0 {
		return nil, errors.New("dist.reducer: no parameters")
	}
	hs, err := handles("reducer", params)
	if err != nil {
		return nil, err
	}
	fu := 0
	if findUnused {
		fu = 1
	}
	var h C.jd_reducer
	err = takeErr(C.jd_reducer_new(g.h, first(hs), C.int(len(hs)), C.int64_t(bucketBytes), C.int(fu), &h), "reducer")
	runtime.KeepAlive(params)
	if err != nil {
		return nil, err
	}
	return &Reducer{h: h, g: g, params: params}, nil
}

// PrepareForward is called before each training forward (it may re-bucket,
// a collective, after the first iteration).
func (r *Reducer) PrepareForward() error {
	return takeErr(C.jd_reducer_prepare_forward(r.h), "reducer_prepare_forward")
}

// PrepareBackward is called between the forward and its backward with the
// forward's outputs (the loss), arming the autograd hooks.
func (r *Reducer) PrepareBackward(outputs ...*torch.Tensor) error {
	hs, err := handles("reducer_prepare_backward", outputs)
	if err != nil {
		return err
	}
	err = takeErr(C.jd_reducer_prepare_backward(r.h, first(hs), C.int(len(hs))), "reducer_prepare_backward", outputs...)
	runtime.KeepAlive(outputs)
	return err
}

// Close removes the hooks and frees the buckets.
func (r *Reducer) Close() {
	if r != nil && r.h != nil {
		C.jd_reducer_free(r.h)
		r.h = nil
	}
}

// SyncBatchNorm is training-mode batch normalisation with the statistics
// of the whole group's batch, as torch.nn.SyncBatchNorm: forward all-reduces
// each channel's count, mean and variance; backward all-reduces the
// channel sums of dy and dy·(x−mean). weight, bias and the running
// statistics may be nil; these are updated in place with the group's mean
// and unbiased variance. Every rank must call it at the same point.
func SyncBatchNorm(g *Group, x, weight, bias, runningMean, runningVar *torch.Tensor, momentum, eps float64) *torch.Tensor {
	if err := checkArgs("sync_batch_norm", x); err != nil {
		return torch.FromError(err)
	}
	opt := []*torch.Tensor{weight, bias, runningMean, runningVar}
	for _, t := range opt {
		if t != nil {
			if err := checkArgs("sync_batch_norm", t); err != nil {
				return torch.FromError(err)
			}
		}
	}
	h := func(t *torch.Tensor) C.jt_tensor {
		if t == nil {
			return nil
		}
		return C.jt_tensor(t.CHandle())
	}
	// The result goes into a handle made here, in x's scope: an
	// uninitialised tensor of x's shape (its pages are never touched), so
	// that the live-tensor counts stay right.
	out := torch.Empty(x.Shape(), x.DType(), x.Device())
	if s := x.Scope(); s != nil {
		s.Track(out)
	}
	if err := out.Err(); err != nil {
		return out
	}
	err := takeErr(C.jd_sync_batch_norm(g.h, h(x), h(weight), h(bias), h(runningMean), h(runningVar), C.double(momentum), C.double(eps), h(out)), "sync_batch_norm", x)
	runtime.KeepAlive(opt)
	runtime.KeepAlive(x)
	if err != nil {
		out.Free()
		return torch.FromError(err)
	}
	return out
}

// handleNumel reads t's element count through dist.cc's view of a handle.
func handleNumel(t *torch.Tensor) int64 {
	n := int64(C.jd_handle_numel(C.jt_tensor(t.CHandle())))
	runtime.KeepAlive(t)
	return n
}

// String describes the group for messages.
func (g *Group) String() string { return fmt.Sprintf("rank %d of %d", g.rank, g.size) }
