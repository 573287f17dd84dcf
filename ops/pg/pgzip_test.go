package pg

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// sampleData is size bytes that compress like a dump: numbered rows of
// repeated words with some random hex.
func sampleData(size int) []byte {
	words := strings.Fields("community concert meetup workshop festival music art dance food market family park")
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%d\t%s %s\t%016x\n", i, words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.Uint64())
	}
	return b.Bytes()[:size]
}

func TestGzipWriterRoundTrip(t *testing.T) {
	random := make([]byte, 3*gzipBlockSize+5)
	rand.NewChaCha8([32]byte{1}).Read(random)
	tests := []struct {
		name  string
		data  []byte
		chunk int // bytes per Write
	}{
		{"empty", nil, 1},
		{"one byte", []byte("x"), 1},
		{"block minus one", sampleData(gzipBlockSize - 1), 4096},
		{"exactly one block", sampleData(gzipBlockSize), gzipBlockSize},
		{"block plus one", sampleData(gzipBlockSize + 1), 777},
		{"more blocks than in flight, odd writes", sampleData(5*gzipBlockSize + 12345), 100_003},
		{"one big write", sampleData(3*gzipBlockSize + 7), 1 << 30},
		{"incompressible", random, 65536},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			z, err := newGzipWriter(&out, snapshotLevel)
			if err != nil {
				t.Fatal(err)
			}
			z.limit = 2 // so five blocks wait for the oldest
			for p := tt.data; len(p) > 0; {
				n := min(len(p), tt.chunk)
				if w, err := z.Write(p[:n]); err != nil || w != n {
					t.Fatalf("Write = %d, %v; want %d, nil", w, err, n)
				}
				p = p[n:]
			}
			if err := z.Close(); err != nil {
				t.Fatal(err)
			}
			// The standard library checks the CRC-32 and size trailer.
			zr, err := gzip.NewReader(&out)
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false)
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("decompress: %v", err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Fatalf("round trip changed the data: got %d bytes, want %d", len(got), len(tt.data))
			}
			if rest, _ := io.ReadAll(&out); len(rest) != 0 {
				t.Errorf("%d bytes after the gzip member", len(rest))
			}
		})
	}
}

// failingWriter fails every write after the first ok ones.
type failingWriter struct{ ok int }

var errDiskFull = errors.New("disk full")

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.ok == 0 {
		return 0, errDiskFull
	}
	f.ok--
	return len(p), nil
}

func TestGzipWriterWriteError(t *testing.T) {
	z, err := newGzipWriter(&failingWriter{ok: 2}, snapshotLevel)
	if err != nil {
		t.Fatal(err)
	}
	z.limit = 2
	data := sampleData(4 * gzipBlockSize)
	_, werr := z.Write(data)
	cerr := z.Close()
	if !errors.Is(werr, errDiskFull) || !errors.Is(cerr, errDiskFull) {
		t.Fatalf("Write = %v, Close = %v; want both %v", werr, cerr, errDiskFull)
	}
}

func TestGzipWriterBadLevel(t *testing.T) {
	if _, err := newGzipWriter(io.Discard, 42); err == nil {
		t.Fatal("level 42 accepted")
	}
}
