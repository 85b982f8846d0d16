def greet(name):
    return f"Howdy, {name}!"


def greet_all(names):
    return [greet(n) for n in names]


if __name__ == "__main__":
    print("Howdy from greet.py")
    for line in greet_all(["Ada", "Linus"]):
        print(line)
