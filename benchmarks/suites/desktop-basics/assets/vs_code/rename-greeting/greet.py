def greet(name):
    return f"Hello, {name}!"


def greet_all(names):
    return [greet(n) for n in names]


if __name__ == "__main__":
    print("Hello from greet.py")
    for line in greet_all(["Ada", "Linus"]):
        print(line)
