namespace Engine.Cpu;

/// <summary>
/// A compile-time integer for generic specialisation: the JIT compiles one body per struct type argument and folds
/// <c>T.Value</c> to a constant, which is how the micro-kernels get one fully unrolled body per tile shape.
/// </summary>
internal interface IGemmConst
{
    /// <summary>The constant.</summary>
    static abstract int Value { get; }
}

internal struct G1 : IGemmConst { public static int Value => 1; }
internal struct G2 : IGemmConst { public static int Value => 2; }
internal struct G3 : IGemmConst { public static int Value => 3; }
internal struct G4 : IGemmConst { public static int Value => 4; }
internal struct G5 : IGemmConst { public static int Value => 5; }
internal struct G6 : IGemmConst { public static int Value => 6; }
internal struct G7 : IGemmConst { public static int Value => 7; }
internal struct G8 : IGemmConst { public static int Value => 8; }
internal struct G9 : IGemmConst { public static int Value => 9; }
internal struct G10 : IGemmConst { public static int Value => 10; }
internal struct G11 : IGemmConst { public static int Value => 11; }
internal struct G12 : IGemmConst { public static int Value => 12; }
internal struct G13 : IGemmConst { public static int Value => 13; }
internal struct G14 : IGemmConst { public static int Value => 14; }
internal struct G16 : IGemmConst { public static int Value => 16; }
internal struct G32 : IGemmConst { public static int Value => 32; }
