package merkle_test

import (
	"fmt"

	"domicile/merkle"
)

func ExampleVerifyInclusion() {
	var tree merkle.MemoryHashes
	for _, e := range []string{"a", "b", "c", "d", "e"} {
		if _, err := tree.Append([]byte(e)); err != nil {
			panic(err)
		}
	}
	root, _ := merkle.TreeHash(5, tree)
	proof, _ := merkle.ProveInclusion(2, 5, tree)
	fmt.Println(len(proof), merkle.VerifyInclusion(proof, 2, 5, merkle.LeafHash([]byte("c")), root))
	fmt.Println(merkle.VerifyInclusion(proof, 2, 5, merkle.LeafHash([]byte("x")), root) != nil)
	// Output:
	// 3 <nil>
	// true
}

func ExampleParseTilePath() {
	t, err := merkle.ParseTilePath("tile/entries/x001/x234/067.p/8")
	fmt.Println(t.L == merkle.EntriesLevel, t.N, t.W, err)
	_, err = merkle.ParseTilePath("tile/0/x000/067")
	fmt.Println(err)
	// Output:
	// true 1234067 8 <nil>
	// merkle: malformed tile path
}
