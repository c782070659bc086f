module github.com/raftex/raftex

go 1.26
