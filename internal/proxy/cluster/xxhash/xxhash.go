// Package xxhash implements the 64-bit xxHash (XXH64) non-cryptographic hash.
//
// Consistent hashing must agree across gateway replicas and restarts, so the data plane needs a hash
// whose output is fixed by its input alone (hash/maphash is seeded per process). XXH64 is fast,
// well distributed, and the hash Envoy uses for its ring hash, so the same keys land on the same
// ring positions as there. The functions do not allocate.
package xxhash

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

const (
	prime1 uint64 = 0x9E3779B185EBCA87
	prime2 uint64 = 0xC2B2AE3D27D4EB4F
	prime3 uint64 = 0x165667B19E3779F9
	prime4 uint64 = 0x85EBCA77C2B2AE63
	prime5 uint64 = 0x27D4EB2F165667C5
)

// Sum64 returns the XXH64 hash of b with seed 0.
func Sum64(b []byte) uint64 { return Sum64Seed(b, 0) }

// Sum64String returns the XXH64 hash of s with seed 0, without copying s.
func Sum64String(s string) uint64 { return Sum64Seed(stringBytes(s), 0) }

// Sum64StringSeed returns the XXH64 hash of s with the given seed, without copying s.
func Sum64StringSeed(s string, seed uint64) uint64 { return Sum64Seed(stringBytes(s), seed) }

// stringBytes views s as a byte slice. The slice must never be written to.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// Sum64Seed returns the XXH64 hash of b with the given seed.
func Sum64Seed(b []byte, seed uint64) uint64 {
	n := len(b)
	var h uint64
	if n >= 32 {
		v1 := seed + prime1 + prime2
		v2 := seed + prime2
		v3 := seed
		v4 := seed - prime1
		for len(b) >= 32 {
			v1 = round(v1, binary.LittleEndian.Uint64(b[0:8]))
			v2 = round(v2, binary.LittleEndian.Uint64(b[8:16]))
			v3 = round(v3, binary.LittleEndian.Uint64(b[16:24]))
			v4 = round(v4, binary.LittleEndian.Uint64(b[24:32]))
			b = b[32:]
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) +
			bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = mergeRound(h, v1)
		h = mergeRound(h, v2)
		h = mergeRound(h, v3)
		h = mergeRound(h, v4)
	} else {
		h = seed + prime5
	}
	h += uint64(n)
	for len(b) >= 8 {
		h ^= round(0, binary.LittleEndian.Uint64(b[:8]))
		h = bits.RotateLeft64(h, 27)*prime1 + prime4
		b = b[8:]
	}
	if len(b) >= 4 {
		h ^= uint64(binary.LittleEndian.Uint32(b[:4])) * prime1
		h = bits.RotateLeft64(h, 23)*prime2 + prime3
		b = b[4:]
	}
	for _, c := range b {
		h ^= uint64(c) * prime5
		h = bits.RotateLeft64(h, 11) * prime1
	}
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}

func round(acc, input uint64) uint64 {
	acc += input * prime2
	acc = bits.RotateLeft64(acc, 31)
	return acc * prime1
}

func mergeRound(acc, val uint64) uint64 {
	val = round(0, val)
	acc ^= val
	return acc*prime1 + prime4
}
