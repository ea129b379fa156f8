namespace Engine.Tensors;

/// <summary>A storage plus an element offset: what every kernel takes instead of a tensor.</summary>
public readonly record struct Buf(Storage Storage, int Offset)
{
    /// <summary>The same storage shifted by <paramref name="elements"/>.</summary>
    public Buf At(int elements) => new(Storage, Offset + elements);
}
