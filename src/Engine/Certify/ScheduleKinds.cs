namespace Engine.Certify;

/// <summary>The shape of the eps ramp from 0 to the target (kappa and beta follow eps_t / eps).</summary>
public enum EpsRamp
{
    /// <summary>eps grows linearly per batch over the ramp (Gowal et al., Zhang et al.).</summary>
    Linear,
    /// <summary>
    /// auto_LiRPA's SmoothedScheduler: eps grows as (t / T)^4-like power up to a quarter of the ramp, then linearly
    /// to the target, with the slope matched at the switch (slower start, which helps IBP-trained networks).
    /// </summary>
    Smoothed,
}

/// <summary>How the learning rate evolves over the run (set per batch).</summary>
public enum LrSchedule
{
    /// <summary>The base rate, times <see cref="CertifiedTrainingOptions.LrDecayFactor"/> after each decay epoch.</summary>
    Step,
    /// <summary>Cosine from the base rate to 0 over the whole run (the standard-training default).</summary>
    Cosine,
    /// <summary>The base rate throughout.</summary>
    Constant,
}
