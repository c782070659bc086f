package kvmodel_test

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/raftex/raftex/internal/kvmodel"
)

// A client's put timed out, so it never returns; a read later saw it
// applied, at a revision the writer never learned. Then a read went back
// in time.
func ExampleCheck() {
	history := []porcupine.Operation{
		{ClientId: 0, Input: kvmodel.Input{Kind: kvmodel.Put, Key: "k", Value: "a"},
			Output: kvmodel.Output{Unknown: true}, Call: 0, Return: kvmodel.Never},
		{ClientId: 1, Input: kvmodel.Input{Kind: kvmodel.Get, Key: "k"},
			Output: kvmodel.Output{Found: true, Value: "a", Rev: 7}, Call: 10, Return: 20},
	}
	res, err := kvmodel.Check(history, time.Minute)
	fmt.Println(res == porcupine.Ok, err)

	history = append(history, porcupine.Operation{ClientId: 1, Input: kvmodel.Input{Kind: kvmodel.Get, Key: "k"},
		Output: kvmodel.Output{}, Call: 30, Return: 40})
	_, err = kvmodel.Check(history, time.Minute)
	fmt.Println(err)
	// Output:
	// true <nil>
	// kvmodel: history not linearizable (3 operations)
}
