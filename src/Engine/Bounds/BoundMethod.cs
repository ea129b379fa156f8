namespace Engine.Bounds;

/// <summary>How bounds are computed.</summary>
public enum BoundMethod
{
    /// <summary>Interval bound propagation: one forward pass of intervals; fastest, loosest.</summary>
    Ibp,
    /// <summary>
    /// CROWN: linear bounds back-substituted from the spec to the input (ReLU upper = chord, lower = adaptive
    /// 0/1 slope); the bounds of every pre-activation a relaxation depends on are computed by CROWN as well.
    /// </summary>
    Crown,
    /// <summary>CROWN-IBP: IBP for the intermediate bounds, CROWN for the last layer (certified training).</summary>
    CrownIbp,
    /// <summary>alpha-CROWN: CROWN whose ReLU lower slopes are optimised (projected Adam), intermediate bounds from CROWN.</summary>
    AlphaCrown,
}
