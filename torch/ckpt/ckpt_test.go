package ckpt_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jmedseg/jmedseg/torch"
	"github.com/jmedseg/jmedseg/torch/ckpt"
	"github.com/jmedseg/jmedseg/torch/nn"
)

// net is a small model with conv, batch norm, dropout and linear layers.
type net struct {
	nn.Base
	body *nn.Sequential
	head *nn.Linear
}

func newNet() *net {
	n := &net{}
	n.body = nn.Register(&n.Base, "body", nn.Seq(
		nn.NewConv2d(2, 4, 3, nn.Padding(1)), nn.NewBatchNorm2d(4), nn.ReLU(), nn.NewDropout2d(0.3),
		nn.NewAdaptiveAvgPool2d(1, 1), nn.Flatten(1, -1)))
	n.head = nn.Register(&n.Base, "head", nn.NewLinear(4, 3))
	return n
}

func (n *net) Forward(x *torch.Tensor) *torch.Tensor { return n.head.Forward(n.body.Forward(x)) }

func weights(t *testing.T, m nn.Node) map[string][]float64 {
	out := map[string][]float64{}
	for _, e := range m.StateDict() {
		v, err := e.Tensor.Float64s()
		require.NoError(t, err)
		out[e.Name] = v
	}
	return out
}

func TestSaveLoadRoundTripAndReport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	a := newNet()
	defer a.Free()
	require.NoError(t, ckpt.Save(path, a, map[string]string{"model": "net", "config": `{"width":4}`}))
	meta, err := ckpt.ReadMetadata(path)
	require.NoError(t, err)
	require.Equal(t, "net", meta["model"])
	require.Equal(t, `{"width":4}`, meta["config"])

	b := newNet()
	defer b.Free()
	meta, rep, err := ckpt.Load(path, b, true)
	require.NoError(t, err)
	require.True(t, rep.OK())
	require.Equal(t, "net", meta["model"])
	require.Equal(t, weights(t, a), weights(t, b))

	// a model with a different layout: missing, unexpected and mis-shaped keys
	type other struct {
		nn.Base
	}
	o := &other{}
	nn.Register(&o.Base, "body", nn.Seq(nn.NewConv2d(2, 5, 3)))
	nn.Register(&o.Base, "tail", nn.NewLinear(4, 3))
	defer o.Free()
	_, rep, err = ckpt.Load(path, o, false)
	require.Error(t, err, "a shape mismatch fails even when not strict")
	require.ErrorIs(t, err, nn.ErrStateDict)
	require.Contains(t, err.Error(), path)
	require.Contains(t, err.Error(), `"body.0.weight" has shape [4 2 3 3] in the checkpoint but [5 2 3 3] in the model`)
	require.Equal(t, []string{"tail.weight", "tail.bias"}, rep.Missing)
	require.Contains(t, rep.Unexpected, "head.weight")

	// non-strict with only missing/unexpected keys loads what fits
	p := &other{}
	nn.Register(&p.Base, "head", nn.NewLinear(4, 3))
	nn.Register(&p.Base, "extra", nn.NewLinear(2, 2))
	defer p.Free()
	_, rep, err = ckpt.Load(path, p, false)
	require.NoError(t, err)
	require.Equal(t, []string{"extra.weight", "extra.bias"}, rep.Missing)
	_, _, err = ckpt.Load(path, p, true)
	require.ErrorContains(t, err, `missing keys "extra.weight", "extra.bias"`)
	require.ErrorContains(t, err, `unexpected keys "body.0.weight"`)
	got, err := p.StateDict()[0].Tensor.Float64s()
	require.NoError(t, err)
	require.Equal(t, weights(t, a)["head.weight"], got)
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	m := newNet()
	defer m.Free()
	require.NoError(t, ckpt.Save(good, m, nil))
	raw, err := os.ReadFile(good)
	require.NoError(t, err)
	hlen := binary.LittleEndian.Uint64(raw)

	huge := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	offsets := append([]byte(nil), raw...)
	copy(offsets[8:8+hlen], []byte(replaceFirst(string(offsets[8:8+hlen]), `"data_offsets":[0,`, `"data_offsets":[9,`)))
	wrongType := append([]byte(nil), raw...)
	copy(wrongType[8:8+hlen], []byte(replaceFirst(string(wrongType[8:8+hlen]), `"F32"`, `"F99"`)))

	// a well-formed file whose float weight is stored as int64
	intw := filepath.Join(dir, "int.safetensors")
	sd := m.StateDict()
	ints := torch.Zeros(sd[0].Tensor.Shape(), torch.Int64)
	defer ints.Free()
	var named []nn.Named
	for i, e := range sd {
		if i == 0 {
			e.Tensor = ints
		}
		named = append(named, e)
	}
	require.NoError(t, ckpt.WriteTensors(intw, named, nil))

	cases := []struct {
		name, want string
		data       []byte
		path       string
	}{
		{name: "truncated", data: raw[:len(raw)-7], want: "truncated"},
		{name: "short", data: raw[:5], want: "truncated"},
		{name: "header too large", data: huge, want: "header"},
		{name: "offsets out of range", data: offsets, want: "offset"},
		{name: "unknown dtype", data: wrongType, want: "dtype"},
		{name: "missing", path: filepath.Join(dir, "nope.safetensors"), want: "no such file"},
		{name: "int for float", path: intw, want: `tensor "body.0.weight" has dtype int64 in the checkpoint but float32 in the model`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.path
			if p == "" {
				p = filepath.Join(dir, "bad.safetensors")
				require.NoError(t, os.WriteFile(p, c.data, 0o644))
			}
			fresh := newNet()
			defer fresh.Free()
			before := weights(t, fresh)
			_, _, err := ckpt.Load(p, fresh, true)
			require.Error(t, err)
			require.Contains(t, err.Error(), p, "the error names the file")
			require.Contains(t, err.Error(), c.want)
			require.Equal(t, before, weights(t, fresh), "nothing is loaded from a bad file")
		})
	}
}

func replaceFirst(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("pattern not found: " + old)
}

func TestDTypesRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.safetensors")
	s := torch.NewScope()
	defer s.Close()
	in := []nn.Named{
		{Name: "f32", Tensor: torch.FromSlice([]float32{1.5, -2}, nil, s)},
		{Name: "f64", Tensor: torch.FromSlice([]float64{1e-300, 3}, nil, s)},
		{Name: "i64", Tensor: torch.FromSlice([]int64{-1, 1 << 40}, []int64{2, 1}, s)},
		{Name: "i32", Tensor: torch.FromSlice([]int32{-7}, []int64{}, s)},
		{Name: "i16", Tensor: torch.FromSlice([]int16{-300, 2}, nil, s)},
		{Name: "i8", Tensor: torch.FromSlice([]int8{-3, 4}, nil, s)},
		{Name: "u8", Tensor: torch.FromSlice([]uint8{255, 0}, nil, s)},
		{Name: "bool", Tensor: torch.FromSlice([]bool{true, false}, nil, s)},
	}
	require.NoError(t, ckpt.WriteTensors(path, in, map[string]string{"k": "v"}))
	out, meta, err := ckpt.ReadTensors(path)
	require.NoError(t, err)
	defer ckpt.Free(out)
	require.Equal(t, "v", meta["k"])
	require.Len(t, out, len(in))
	for i := range in {
		require.Equal(t, in[i].Name, out[i].Name)
		require.Equal(t, in[i].Tensor.DType(), out[i].Tensor.DType(), in[i].Name)
		require.Equal(t, in[i].Tensor.Shape(), out[i].Tensor.Shape(), in[i].Name)
		a, err := in[i].Tensor.Float64s()
		require.NoError(t, err)
		b, err := out[i].Tensor.Float64s()
		require.NoError(t, err)
		require.Equal(t, a, b, in[i].Name)
	}
	half := torch.FromSlice([]float32{1}, nil, torch.Float16, s)
	_, err = ckpt.Encode("h", half)
	require.ErrorContains(t, err, "float16")
}
