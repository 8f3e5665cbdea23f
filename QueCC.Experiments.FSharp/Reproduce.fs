module QueCC.Experiments.Reproduce
