module QueCC.Experiments.Data
