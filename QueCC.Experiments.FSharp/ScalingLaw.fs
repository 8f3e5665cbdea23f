module QueCC.Experiments.ScalingLaw
