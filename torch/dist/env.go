package dist

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env is where a process stands in a distributed job: the variables
// torchrun (and Slurm wrappers that mimic it) set.
type Env struct {
	Rank           int    // RANK: 0 .. WorldSize-1
	WorldSize      int    // WORLD_SIZE
	LocalRank      int    // LOCAL_RANK: the rank on this machine
	LocalWorldSize int    // LOCAL_WORLD_SIZE (0: not set)
	MasterAddr     string // MASTER_ADDR: where rank 0's TCPStore listens
	MasterPort     int    // MASTER_PORT
}

// DefaultPort is torchrun's MASTER_PORT default.
const DefaultPort = 29500

// FromEnv reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR (default 127.0.0.1) and MASTER_PORT (default 29500). ok is
// false when neither RANK nor WORLD_SIZE is set (not a distributed job); a
// variable that is set but wrong is an error naming it.
func FromEnv() (e Env, ok bool, err error) {
	rank, hasRank := os.LookupEnv("RANK")
	world, hasWorld := os.LookupEnv("WORLD_SIZE")
	if !hasRank && !hasWorld {
		return Env{}, false, nil
	}
	if !hasRank || !hasWorld {
		return Env{}, false, errors.New("distributed: RANK and WORLD_SIZE must be set together (torchrun sets both)")
	}
	num := func(name, v string, min int) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < min {
			return 0, fmt.Errorf("distributed: %s=%q: want an integer, %d or more", name, v, min)
		}
		return n, nil
	}
	if e.Rank, err = num("RANK", rank, 0); err != nil {
		return Env{}, false, err
	}
	if e.WorldSize, err = num("WORLD_SIZE", world, 1); err != nil {
		return Env{}, false, err
	}
	if v, set := os.LookupEnv("LOCAL_RANK"); set {
		if e.LocalRank, err = num("LOCAL_RANK", v, 0); err != nil {
			return Env{}, false, err
		}
	}
	if v, set := os.LookupEnv("LOCAL_WORLD_SIZE"); set {
		if e.LocalWorldSize, err = num("LOCAL_WORLD_SIZE", v, 1); err != nil {
			return Env{}, false, err
		}
	}
	e.MasterAddr = os.Getenv("MASTER_ADDR")
	if e.MasterAddr == "" {
		e.MasterAddr = "127.0.0.1"
	}
	e.MasterPort = DefaultPort
	if v := os.Getenv("MASTER_PORT"); v != "" {
		if e.MasterPort, err = num("MASTER_PORT", v, 1); err != nil {
			return Env{}, false, err
		}
	}
	return e, true, e.Check()
}

// Check validates e, naming the variable at fault.
func (e Env) Check() error {
	switch {
	case e.WorldSize < 1:
		return fmt.Errorf("distributed: WORLD_SIZE=%d: want 1 or more", e.WorldSize)
	case e.Rank < 0 || e.Rank >= e.WorldSize:
		return fmt.Errorf("distributed: RANK=%d outside WORLD_SIZE=%d (want 0 to %d)", e.Rank, e.WorldSize, e.WorldSize-1)
	case e.MasterPort < 1 || e.MasterPort > 65535:
		return fmt.Errorf("distributed: MASTER_PORT=%d: want 1-65535", e.MasterPort)
	case e.MasterAddr == "":
		return errors.New("distributed: MASTER_ADDR is empty")
	}
	return nil
}

// InitOptions configure Init.
type InitOptions struct {
	Backend string        // gloo (default)
	Timeout time.Duration // joining, and every collective afterwards (default 30 minutes)
	Threads int           // gloo worker threads (0: 2)
}

func loopback(addr string) bool {
	if addr == "localhost" {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// Keys Init keeps in the store, apart from the process group's.
const (
	keyAbort  = "jmedseg/abort"
	keyJoined = "jmedseg/joined"
)

// Init joins the job e describes: rank 0 starts the TCPStore on
// MASTER_PORT, every rank connects to MASTER_ADDR:MASTER_PORT, checks that
// all agree on WORLD_SIZE and that no RANK is taken twice, waits for all
// WORLD_SIZE ranks, and makes the gloo group. Each failure is an error that
// says what to check: a port in use, a master that cannot be reached, a
// wrong world size, ranks missing after the timeout.
func Init(e Env, opt InitOptions) (*Group, error) {
	if err := e.Check(); err != nil {
		return nil, err
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Minute
	}
	if opt.Backend == "" {
		opt.Backend = "gloo"
	}
	if !HasBackend(opt.Backend) {
		return nil, fmt.Errorf("distributed: --dist-backend %s: not available in this build (gloo is; nccl needs a CUDA libtorch)", opt.Backend)
	}
	where := fmt.Sprintf("%s:%d", e.MasterAddr, e.MasterPort)
	me := fmt.Sprintf("rank %d of %d", e.Rank, e.WorldSize)
	store, err := NewTCPStore(e.MasterAddr, e.MasterPort, e.WorldSize, e.Rank == 0, opt.Timeout)
	if err != nil {
		msg := err.Error()
		switch {
		case e.Rank == 0 && (strings.Contains(msg, "in use") || strings.Contains(msg, "EADDRINUSE")):
			return nil, fmt.Errorf("distributed: %s: MASTER_PORT=%d is already in use on this machine (another job?): choose a free port: %w", me, e.MasterPort, err)
		case e.Rank == 0:
			return nil, fmt.Errorf("distributed: %s: cannot start the TCPStore on port %d: %w", me, e.MasterPort, err)
		default:
			return nil, fmt.Errorf("distributed: %s: cannot reach the master (rank 0's TCPStore) at MASTER_ADDR:MASTER_PORT=%s within %s: is rank 0 running there, and are the address and port right? %w", me, where, opt.Timeout, err)
		}
	}
	fail := func(err error) (*Group, error) {
		store.Close()
		return nil, err
	}
	abort := func(reason string) (*Group, error) {
		_ = store.Set(keyAbort, []byte(reason))
		return fail(errors.New(reason))
	}
	ws := []byte(strconv.Itoa(e.WorldSize))
	if err := store.Set("jmedseg/world/"+strconv.Itoa(e.Rank), ws); err != nil {
		return fail(fmt.Errorf("distributed: %s: store at %s: %w", me, where, err))
	}
	w0, err := store.Get("jmedseg/world/0")
	if err != nil {
		return fail(fmt.Errorf("distributed: %s: rank 0 did not register at %s within %s: %w", me, where, opt.Timeout, err))
	}
	if string(w0) != string(ws) {
		return abort(fmt.Sprintf("distributed: %s: WORLD_SIZE=%d here, but %s on rank 0: every rank must be started with the same WORLD_SIZE", me, e.WorldSize, w0))
	}
	if n, err := store.Add("jmedseg/rank/"+strconv.Itoa(e.Rank), 1); err != nil {
		return fail(fmt.Errorf("distributed: %s: %w", me, err))
	} else if n > 1 {
		return abort(fmt.Sprintf("distributed: RANK=%d was started twice: give every process its own RANK", e.Rank))
	}
	if _, err := store.Add(keyJoined, 1); err != nil {
		return fail(fmt.Errorf("distributed: %s: %w", me, err))
	}
	// Wait for everyone here, not in gloo's rendezvous, so that a missing
	// rank or another rank's refusal reads as such.
	deadline := time.Now().Add(opt.Timeout)
	for {
		if has, err := store.Has(keyAbort); err != nil {
			return fail(fmt.Errorf("distributed: %s: %w", me, err))
		} else if has {
			why, _ := store.Get(keyAbort)
			return fail(fmt.Errorf("distributed: %s: another rank refused the job: %s", me, why))
		}
		n, err := store.Add(keyJoined, 0)
		if err != nil {
			return fail(fmt.Errorf("distributed: %s: lost the store at %s: %w", me, where, err))
		}
		if n >= int64(e.WorldSize) {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("distributed: %s: only %d of WORLD_SIZE=%d ranks joined at %s within %s: a rank did not start, cannot reach the master, or WORLD_SIZE is wrong", me, n, e.WorldSize, where, opt.Timeout))
		}
		time.Sleep(20 * time.Millisecond)
	}
	iface := ""
	switch {
	case os.Getenv("GLOO_SOCKET_IFNAME") != "":
		iface = "iface=" + os.Getenv("GLOO_SOCKET_IFNAME")
	case loopback(e.MasterAddr):
		iface = "127.0.0.1" // a single-machine job stays on loopback
	}
	pgStore, err := store.Prefix("jmedseg/pg/")
	if err != nil {
		return fail(err)
	}
	g, err := NewGroup(pgStore, e.Rank, e.WorldSize, GroupOptions{Backend: opt.Backend, Interface: iface, Threads: opt.Threads, Timeout: opt.Timeout})
	if err != nil {
		pgStore.Close()
		return fail(fmt.Errorf("distributed: %s: making the %s group: %w", me, opt.Backend, err))
	}
	g.owned = []*Store{pgStore, store}
	return g, nil
}
