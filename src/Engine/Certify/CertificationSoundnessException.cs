namespace Engine.Certify;

/// <summary>
/// A certifier claimed an example robust that is not: it is misclassified at the clean input, or an attack found a
/// misclassified input inside its perturbation set (re-checked by a forward pass). This is a soundness bug of the
/// certifier (or of the bounds beneath it), never a property of the model, so the report is not produced.
/// </summary>
public sealed class CertificationSoundnessException : InvalidOperationException
{
    /// <summary>Creates the exception for example <paramref name="example"/>.</summary>
    public CertificationSoundnessException(int example, string message) : base(message) => Example = example;

    /// <summary>Index of the offending example in the dataset.</summary>
    public int Example { get; }
}
