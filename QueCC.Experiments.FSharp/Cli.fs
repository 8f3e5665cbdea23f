module QueCC.Experiments.Cli
